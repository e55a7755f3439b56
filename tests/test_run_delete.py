"""DeleteRun and DeleteRuns over the wire: nothing of the run is left in any table of the schema, other
runs keep everything, a running run only with force, and the exact codes."""

from __future__ import annotations

import uuid

import grpc
import pytest
from support.flows import move_step, new_run, new_step, refusal_of, scheduled_steps, status_of
from support.task_stream import TaskStream

from workflowstate.client import FailedPrecondition, NotFound, RunStatus, WorkflowStateClient
from workflowstate import v1 as pb

SCHEMA = "workflows_test"


def rows_mentioning(db, ident: str) -> dict[str, int]:
    """For every table of the schema (whatever tables it has now), how many rows mention `ident` in
    any column: a run id, or a step id."""
    tables = [
        name
        for (name,) in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'", (SCHEMA,)
        ).fetchall()
    ]
    assert {"runs", "steps", "step_attempts", "run_events"} <= set(tables)
    return {
        table: db.execute(f"SELECT count(*) FROM {SCHEMA}.{table} t WHERE t::text LIKE %s", (f"%{ident}%",)).fetchone()[0]
        for table in tables
    }


def busy_run(stub) -> tuple[pb.Run, list[pb.StepState]]:
    """A run with several steps, a retried one, and events."""
    run = new_run(stub)
    steps = [new_step(stub, run.run_id, f"s{i}", retries=1) for i in range(3)]
    move_step(stub, steps[0].step_id, pb.STEP_STATUS_SUCCEEDED)
    move_step(stub, steps[1].step_id, pb.STEP_STATUS_FAILED)
    stub.CreateRetryAttempt(pb.CreateRetryAttemptRequest(step_id=steps[1].step_id, status=pb.STEP_STATUS_PENDING))
    return run, steps


@pytest.mark.parametrize("finish", [pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_CANCELLED])
def test_delete_run_leaves_no_row_of_the_run_in_any_table(stub, db, finish) -> None:
    run, steps = busy_run(stub)
    kept, kept_steps = busy_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=finish))
    before = rows_mentioning(db, run.run_id)
    assert before["runs"] == 1 and before["steps"] == 3 and before["step_attempts"] == 4 and before["run_events"] > 0
    kept_before = rows_mentioning(db, kept.run_id)

    assert stub.DeleteRun(pb.DeleteRunRequest(run_id=run.run_id)) == pb.DeleteRunResponse()

    assert set(rows_mentioning(db, run.run_id).values()) == {0}
    for step in steps:
        assert set(rows_mentioning(db, step.step_id).values()) == {0}
    assert rows_mentioning(db, kept.run_id) == kept_before, "another run keeps every row"
    code, _ = status_of(stub.GetRun, pb.GetRunRequest(run_id=run.run_id))
    assert code == grpc.StatusCode.NOT_FOUND
    refused = refusal_of(stub.DeleteRun, pb.DeleteRunRequest(run_id=run.run_id))
    assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "MISSING"), "a second delete finds nothing"
    assert refused.metadata == {"run_id": run.run_id}, refused
    assert run.run_id in refused.message, refused


def test_a_running_run_is_deleted_only_with_force_and_its_worker_s_report_is_then_refused(stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1)
    [step] = scheduled_steps(stub, rpc, 1)
    task = worker.expect("task")
    before = rows_mentioning(db, step.run_id)

    refused = refusal_of(stub.DeleteRun, pb.DeleteRunRequest(run_id=step.run_id))
    assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION"), refused
    assert "RUNNING" in refused.message and "force" in refused.message, "the message says why and what to add"
    assert rows_mentioning(db, step.run_id) == before, "nothing erased"

    stub.DeleteRun(pb.DeleteRunRequest(run_id=step.run_id, force=True))
    assert set(rows_mentioning(db, step.run_id).values()) == {0}
    worker.complete(task)
    refused = worker.expect("refused")
    assert (refused.step_id, refused.code, refused.reason) == (step.step_id, grpc.StatusCode.NOT_FOUND.value[0], "MISSING"), refused
    assert set(rows_mentioning(db, step.run_id).values()) == {0}, "the late report wrote nothing back"
    worker.cancel()


@pytest.mark.parametrize(
    ("request_", "code", "reason", "says"),
    [
        (pb.DeleteRunRequest(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "run_id is required"),
        (pb.DeleteRunRequest(run_id="1"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "run_id is not a valid UUID"),
        (pb.DeleteRunRequest(run_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND, "MISSING", "not found"),
    ],
)
def test_delete_run_codes(stub, request_, code, reason, says) -> None:
    refused = refusal_of(stub.DeleteRun, request_)
    assert (refused.code, refused.reason) == (code, reason) and says in refused.message, refused


def test_delete_runs_erases_the_finished_runs_that_match_oldest_first_and_running_ones_only_with_force(stub, db) -> None:
    workflow = f"del-{uuid.uuid4().hex[:8]}"
    runs = [new_run(stub, workflow) for _ in range(4)]
    for run in runs[:3]:
        new_step(stub, run.run_id)
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED))
    running = runs[3]
    other = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=other.run_id, status=pb.RUN_STATUS_FAILED))
    only = pb.RunFilter(workflow=workflow)

    first = stub.DeleteRuns(pb.DeleteRunsRequest(filter=only, max_runs=2))
    assert first.deleted_count == 2 and list(first.run_ids) == [run.run_id for run in runs[:2]]
    rest = stub.DeleteRuns(pb.DeleteRunsRequest(filter=only, max_runs=1000))
    assert list(rest.run_ids) == [runs[2].run_id], "the running run is left without force"
    assert stub.GetRun(pb.GetRunRequest(run_id=running.run_id)).run.status == pb.RUN_STATUS_RUNNING
    forced = stub.DeleteRuns(pb.DeleteRunsRequest(filter=only, max_runs=1000, force=True))
    assert list(forced.run_ids) == [running.run_id]
    for run in runs:
        assert set(rows_mentioning(db, run.run_id).values()) == {0}
    assert rows_mentioning(db, other.run_id)["runs"] == 1, "a run outside the filter stays"


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (pb.DeleteRunsRequest(max_runs=0), "max_runs"),
        (pb.DeleteRunsRequest(max_runs=1001), "max_runs"),
        (pb.DeleteRunsRequest(max_runs=1, filter=pb.RunFilter(statuses=[pb.RUN_STATUS_RUNNING])), "filter.statuses"),
        (pb.DeleteRunsRequest(max_runs=1, filter=pb.RunFilter(statuses=[9])), "filter.statuses"),
    ],
)
def test_delete_runs_refuses_bad_requests_naming_the_field(stub, request_, says) -> None:
    refused = refusal_of(stub.DeleteRuns, request_)
    assert (refused.code, refused.metadata.get("field")) == (grpc.StatusCode.INVALID_ARGUMENT, says), refused
    assert refused.message.startswith(says), refused


def test_the_client_deletes_runs(server_target: str) -> None:
    workflow = f"del-c-{uuid.uuid4().hex[:8]}"
    with WorkflowStateClient(server_target) as client:
        runs = [client.create_run(workflow, i) for i in range(3)]
        with pytest.raises(FailedPrecondition) as without_force:
            client.delete_run(runs[0].run_id)
        assert without_force.value.reason == "FAILED_PRECONDITION"
        client.delete_run(runs[0].run_id, force=True)
        assert client.get_run(runs[0].run_id) is None
        with pytest.raises(NotFound) as deleted:
            client.delete_run(runs[0].run_id)
        assert (deleted.value.reason, deleted.value.metadata) == ("MISSING", {"run_id": runs[0].run_id})
        client.update_run_status(runs[1].run_id, RunStatus.COMPLETED)
        assert client.delete_runs(workflow=workflow, statuses=[RunStatus.COMPLETED]) == [runs[1].run_id]
        assert client.delete_runs(workflow=workflow, force=True) == [runs[2].run_id]
