"""CancelRun and CancelRuns over the wire: the run and its event, the steps never dispatched, the worker
told on every server, its late result refused with nothing written, and the exact codes."""

from __future__ import annotations

import uuid

import grpc
import pytest
from support.flows import new_run, new_step, reason_of, refusal_of, scheduled_steps
from support.task_stream import TaskStream

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

REFUSED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]


def row_counts(db, schema: str, run_id: str) -> dict[str, object]:
    """What is stored of a run: its steps, attempts and events, to show that nothing was written."""
    return {
        table: db.execute(f"SELECT count(*), max(update_time) FROM {schema}.{table} WHERE run_id = %s", (run_id,)).fetchone()
        for table in ("steps", "step_attempts")
    } | {"run_events": db.execute(f"SELECT count(*) FROM {schema}.run_events WHERE run_id = %s", (run_id,)).fetchone()}


def _cancel_then_late_report(stub, db, schema: str, worker: TaskStream, canceller, rpc: str, report: str) -> None:
    [step, waiting] = scheduled_steps(canceller, rpc, 2)
    task = worker.expect("task")
    assert task.step_id == step.step_id
    # The second step is scheduled too, but the worker has one credit only: it never gets it.
    run = canceller.CancelRun(pb.CancelRunRequest(run_id=step.run_id, reason="customer asked")).run
    assert run.status == pb.RUN_STATUS_CANCELLED
    assert (run.error.message, run.error.code) == ("customer asked", "CANCELLED")

    cancel = worker.expect("cancel")
    assert (cancel.step_id, cancel.attempt, cancel.run_id, cancel.reason) == (step.step_id, 1, step.run_id, "customer asked")
    before = row_counts(db, schema, step.run_id)
    if report == "complete":
        worker.complete(task, '{"late": true}')
    else:
        worker.fail(task, "stopped")
    refused = worker.expect("refused")
    assert (refused.step_id, refused.attempt, refused.code) == (step.step_id, 1, REFUSED_PRECONDITION)
    assert (refused.reason, refused.metadata["run_status"]) == ("FINISHED_RUN", "CANCELLED"), refused
    assert row_counts(db, schema, step.run_id) == before, "the refused report wrote nothing"
    state = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert state.status == pb.STEP_STATUS_RUNNING and not state.HasField("result_json")

    # The refusal freed the slot: with credit back, the cancelled run's other step is still never sent.
    worker.credit(1)
    [marker] = scheduled_steps(canceller, rpc, 1)
    assert worker.expect("task").step_id == marker.step_id
    left = stub.GetStepState(pb.GetStepStateRequest(run_id=waiting.run_id, step_name=waiting.step_name)).step
    assert left.status == pb.STEP_STATUS_SCHEDULED, "a step of a cancelled run is never dispatched"


@pytest.mark.parametrize("report", ["complete", "fail"])
def test_the_worker_holding_an_attempt_is_told_and_its_late_report_is_refused(stub, db, rpc, report) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1, worker_id="w-cancel")
    _cancel_then_late_report(stub, db, "workflows_test", worker, stub, rpc, report)
    worker.cancel()


def test_a_worker_on_another_server_is_told_too(start_server, db, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    first, second = start_server(schema=schema), start_server(schema=schema)
    with grpc.insecure_channel(first.target) as one, grpc.insecure_channel(second.target) as other:
        worker = TaskStream(pb_grpc.WorkflowStateServiceStub(other))
        worker.subscribe([rpc], max_in_flight=1, worker_id="w-elsewhere")
        stub = pb_grpc.WorkflowStateServiceStub(one)
        # Cancelled through the first server: the second hears through PostgreSQL (NOTIFY).
        _cancel_then_late_report(stub, db, schema, worker, stub, rpc, "complete")
        worker.cancel()


def test_cancelling_writes_the_run_and_its_event_together_and_again_is_a_no_op(stub, db) -> None:
    run = new_run(stub)
    new_step(stub, run.run_id)
    cancelled = stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id)).run
    assert cancelled.status == pb.RUN_STATUS_CANCELLED and cancelled.error.message == "cancelled"
    events = db.execute(
        "SELECT status FROM workflows_test.run_events WHERE run_id = %s AND step_id IS NULL ORDER BY event_id", (run.run_id,)
    ).fetchall()
    assert [status for (status,) in events] == ["running", "cancelled"]

    again = stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id, reason="another reason")).run
    assert again == cancelled, "cancelling a cancelled run changes nothing"
    code, reason, _, metadata = reason_of(stub.InsertStepState, pb.InsertStepStateRequest(run_id=run.run_id, step_name="late", rpc_name="r"))
    assert (code, reason, metadata["run_status"]) == (grpc.StatusCode.FAILED_PRECONDITION, "FINISHED_RUN", "CANCELLED"), metadata


@pytest.mark.parametrize("status", [pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED])
def test_cancelling_a_finished_run_is_failed_precondition(stub, status) -> None:
    run = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=status))
    code, reason, _, metadata = reason_of(stub.CancelRun, pb.CancelRunRequest(run_id=run.run_id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FINISHED_RUN")
    assert (metadata["prior_status"], metadata["target_status"]) == (pb.RunStatus.Name(status).removeprefix("RUN_STATUS_"), "CANCELLED")
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == status


@pytest.mark.parametrize(
    ("request_", "code", "reason", "says"),
    [
        (pb.CancelRunRequest(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "run_id is required"),
        (pb.CancelRunRequest(run_id="x"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "run_id is not a valid UUID"),
        (pb.CancelRunRequest(run_id=str(uuid.uuid4()), reason="r" * 1025), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "reason is 1025 characters"),
        (pb.CancelRunRequest(run_id=str(uuid.uuid4())), grpc.StatusCode.NOT_FOUND, "MISSING", "not found"),
    ],
)
def test_cancel_run_codes(stub, request_, code, reason, says) -> None:
    refused = refusal_of(stub.CancelRun, request_)
    assert (refused.code, refused.reason, says in refused.message) == (code, reason, True), refused


def test_cancel_runs_cancels_the_running_runs_that_match_oldest_first_up_to_max(stub) -> None:
    workflow = f"bulk-{uuid.uuid4().hex[:8]}"
    runs = [new_run(stub, workflow) for _ in range(5)]
    done = new_run(stub, workflow)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=done.run_id, status=pb.RUN_STATUS_COMPLETED))
    other = new_run(stub)
    only = pb.RunFilter(workflow=workflow)

    first = stub.CancelRuns(pb.CancelRunsRequest(filter=only, max_runs=3, reason="clean-up"))
    assert first.cancelled_count == 3 and list(first.run_ids) == [run.run_id for run in runs[:3]]
    second = stub.CancelRuns(pb.CancelRunsRequest(filter=pb.RunFilter(workflow=workflow, statuses=[pb.RUN_STATUS_RUNNING]), max_runs=10))
    assert second.cancelled_count == 2 and set(second.run_ids) == {run.run_id for run in runs[3:]}
    assert stub.CancelRuns(pb.CancelRunsRequest(filter=only, max_runs=10)).cancelled_count == 0
    for run in runs:
        stored = stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run
        assert stored.status == pb.RUN_STATUS_CANCELLED and stored.error.code == "CANCELLED"
    assert stub.GetRun(pb.GetRunRequest(run_id=runs[0].run_id)).run.error.message == "clean-up"
    assert stub.GetRun(pb.GetRunRequest(run_id=done.run_id)).run.status == pb.RUN_STATUS_COMPLETED
    assert stub.GetRun(pb.GetRunRequest(run_id=other.run_id)).run.status == pb.RUN_STATUS_RUNNING


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (pb.CancelRunsRequest(max_runs=0), "max_runs"),
        (pb.CancelRunsRequest(max_runs=10_001), "max_runs"),
        (pb.CancelRunsRequest(max_runs=1, filter=pb.RunFilter(statuses=[pb.RUN_STATUS_FAILED])), "filter.statuses"),
        (pb.CancelRunsRequest(max_runs=1, filter=pb.RunFilter(statuses=[0])), "filter.statuses"),
        (pb.CancelRunsRequest(max_runs=1, reason="\x00"), "reason"),
    ],
)
def test_cancel_runs_refuses_bad_requests_naming_the_field(stub, request_, says) -> None:
    refused = refusal_of(stub.CancelRuns, request_)
    assert (refused.code, refused.metadata.get("field")) == (grpc.StatusCode.INVALID_ARGUMENT, says), refused
    assert refused.message.startswith(says), refused


def test_a_run_finished_by_its_workflow_under_a_running_attempt_tells_the_worker_too(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1)
    [step] = scheduled_steps(stub, rpc, 1)
    task = worker.expect("task")
    # Not CancelRun: the workflow fails its run itself; the NOTIFY of the announce_finished_run trigger carries it.
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=step.run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure(message="gave up")))
    cancel = worker.expect("cancel")
    assert (cancel.step_id, cancel.attempt, cancel.reason) == (task.step_id, task.attempt, "the run is FAILED")
    worker.cancel()


def test_a_worker_that_reconnects_holding_a_cancelled_task_is_told_again(stub, rpc) -> None:
    first = TaskStream(stub)
    first.subscribe([rpc], max_in_flight=1, worker_id="back")
    [step] = scheduled_steps(stub, rpc, 1)
    task = first.expect("task")
    stub.CancelRun(pb.CancelRunRequest(run_id=step.run_id, reason="while you were away"))
    assert first.expect("cancel").step_id == task.step_id
    # The worker goes away before it answers (its attempt is not failed as lost: the run is over),
    # and comes back (under its own worker_id) naming the task it holds.
    first.cancel()
    second = TaskStream(stub)
    held = pb.StepTaskAck(step_id=task.step_id, attempt=task.attempt)
    subscribe = pb.StepTaskSubscribe(worker_id="back", rpc_names=[rpc], max_in_flight=1, running=[held])
    second.send(pb.StreamStepTasksRequest(subscribe=subscribe))
    subscribed = second.expect("subscribed")
    assert [(a.step_id, a.attempt) for a in subscribed.adopted] == [(task.step_id, task.attempt)]
    cancel = second.expect("cancel")
    assert (cancel.step_id, cancel.reason) == (task.step_id, "while you were away")
    second.cancel()
