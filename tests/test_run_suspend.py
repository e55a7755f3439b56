"""SUSPENDED runs and steps over the wire: every move in and out of it, legal and illegal, with
its code and nothing written when refused; and what a suspended run or step means elsewhere
(deletes, cancels, lists, retention, dispatch, a worker holding a suspended attempt).

The expected tables are written out here from the contract's text, independently of
server/state/transitions.py.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from support.bidi_stream import duration
from support.flows import ending_of, history_of, move_step, new_run, new_step, reason_of, scheduled_steps, status_of, step_in
from support.task_stream import TaskStream

from workflowstate import v1 as pb

PENDING, SCHEDULED, RUNNING, SUCCEEDED, FAILED, SUSPENDED = (
    pb.STEP_STATUS_PENDING, pb.STEP_STATUS_SCHEDULED, pb.STEP_STATUS_RUNNING, pb.STEP_STATUS_SUCCEEDED,
    pb.STEP_STATUS_FAILED, pb.STEP_STATUS_SUSPENDED,
)  # fmt: skip
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
REFUSED_PRECONDITION = PRECONDITION.value[0]

R_RUNNING, R_COMPLETED, R_FAILED, R_CANCELLED, R_SUSPENDED = (
    pb.RUN_STATUS_RUNNING, pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_CANCELLED, pb.RUN_STATUS_SUSPENDED,
)  # fmt: skip
RUN_STATUSES = [R_RUNNING, R_COMPLETED, R_FAILED, R_CANCELLED, R_SUSPENDED]
# The contract: where UpdateRunStatus may take a run from each status (besides its own status).
LEGAL_RUN = {
    R_RUNNING: {R_COMPLETED, R_FAILED, R_CANCELLED, R_SUSPENDED},
    R_SUSPENDED: {R_RUNNING, R_COMPLETED, R_FAILED, R_CANCELLED},
    R_COMPLETED: set(),
    R_FAILED: set(),
    R_CANCELLED: set(),
}


def _step_name(status: int) -> str:
    return pb.StepStatus.Name(status).removeprefix("STEP_STATUS_")


def _run_name(status: int) -> str:
    return pb.RunStatus.Name(status).removeprefix("RUN_STATUS_")


def _read(stub, step: pb.StepState) -> pb.StepState:
    return stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step


def _get_run(stub, run_id: str) -> pb.Run:
    return stub.GetRun(pb.GetRunRequest(run_id=run_id)).run


def suspend(stub, step_id: str) -> pb.StepState:
    return stub.SetStepSuspended(pb.SetStepSuspendedRequest(step_id=step_id)).step


def suspended_run(stub, workflow: str | None = None) -> pb.Run:
    run = new_run(stub, workflow)
    return stub.UpdateRunStatus(
        pb.UpdateRunStatusRequest(run_id=run.run_id, status=R_SUSPENDED, error=pb.Failure(message="waiting for approval"))
    ).run


# Runs.


@pytest.mark.parametrize("source", RUN_STATUSES, ids=_run_name)
@pytest.mark.parametrize("target", RUN_STATUSES, ids=_run_name)
def test_run_moves_with_suspended(stub, source: int, target: int) -> None:
    run = new_run(stub)
    if source == R_SUSPENDED:
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=R_SUSPENDED))
    elif source != R_RUNNING:
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=source))
    before = _get_run(stub, run.run_id)
    ended = ending_of(stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run.run_id, status=target))
    after = _get_run(stub, run.run_id)
    if source == target:
        assert ended.code == grpc.StatusCode.OK, ended.message
        assert after == before
    elif target in LEGAL_RUN[source]:
        assert ended.code == grpc.StatusCode.OK, ended.message
        assert after.status == target
    else:
        reason = "ILLEGAL_TRANSITION" if source in (R_RUNNING, R_SUSPENDED) else "FINISHED_RUN"
        assert (ended.code, ended.reason) == (PRECONDITION, reason), ended
        assert (ended.metadata["prior_status"], ended.metadata["target_status"]) == (_run_name(source), _run_name(target)), ended
        assert after == before, "a refused move writes nothing"


@pytest.mark.parametrize("target", [R_RUNNING, R_COMPLETED], ids=_run_name)
def test_leaving_suspended_for_running_or_completed_clears_the_error(stub, target: int) -> None:
    run = suspended_run(stub)
    assert run.error.message == "waiting for approval"
    after = stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=target)).run
    assert after.status == target and not after.HasField("error")
    assert not _get_run(stub, run.run_id).HasField("error")


def test_leaving_suspended_with_an_error_stores_it_and_failing_keeps_the_old_one(stub) -> None:
    run = suspended_run(stub)
    after = stub.UpdateRunStatus(
        pb.UpdateRunStatusRequest(run_id=run.run_id, status=R_RUNNING, error=pb.Failure(message="resumed by hand"))
    ).run
    assert after.error.message == "resumed by hand"
    other = suspended_run(stub)
    failed = stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=other.run_id, status=R_FAILED)).run
    assert failed.error.message == "waiting for approval", "only RUNNING and COMPLETED clear the stored error"


def test_a_suspended_run_still_takes_steps_and_step_writes(stub) -> None:
    run = suspended_run(stub)
    step = new_step(stub, run.run_id)
    assert move_step(stub, step.step_id, RUNNING).status == RUNNING
    assert move_step(stub, step.step_id, SUCCEEDED).status == SUCCEEDED
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="n", value_json="1"))


def test_cancel_run_takes_a_suspended_run(stub) -> None:
    run = suspended_run(stub)
    cancelled = stub.CancelRun(pb.CancelRunRequest(run_id=run.run_id, reason="no approval")).run
    assert cancelled.status == R_CANCELLED and cancelled.error.message == "no approval"


def test_cancel_runs_takes_suspended_runs(stub, unique) -> None:
    suspended = suspended_run(stub, unique)
    running = new_run(stub, unique)
    response = stub.CancelRuns(
        pb.CancelRunsRequest(filter=pb.RunFilter(workflow=unique, statuses=[R_SUSPENDED]), max_runs=10, reason="bulk")
    )
    assert list(response.run_ids) == [suspended.run_id]
    assert _get_run(stub, running.run_id).status == R_RUNNING
    code, message = status_of(
        stub.CancelRuns, pb.CancelRunsRequest(filter=pb.RunFilter(workflow=unique, statuses=[R_COMPLETED]), max_runs=10)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "filter.statuses" in message, message


def test_deleting_a_suspended_run_needs_force(stub, unique) -> None:
    run = suspended_run(stub, unique)
    ended = ending_of(stub.DeleteRun, pb.DeleteRunRequest(run_id=run.run_id))
    assert (ended.code, ended.reason) == (PRECONDITION, "FAILED_PRECONDITION"), ended
    assert "SUSPENDED" in ended.message and "force" in ended.message, "the message says why and what to add"
    assert _get_run(stub, run.run_id).status == R_SUSPENDED
    code, message = status_of(stub.DeleteRuns, pb.DeleteRunsRequest(filter=pb.RunFilter(workflow=unique, statuses=[R_SUSPENDED]), max_runs=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "force" in message, message
    none = stub.DeleteRuns(pb.DeleteRunsRequest(filter=pb.RunFilter(workflow=unique), max_runs=10))
    assert list(none.run_ids) == [], "without force a suspended run is left out"
    stub.DeleteRun(pb.DeleteRunRequest(run_id=run.run_id, force=True))
    assert status_of(stub.GetRun, pb.GetRunRequest(run_id=run.run_id))[0] == grpc.StatusCode.NOT_FOUND


def test_retention_refuses_suspended(stub) -> None:
    code, message = status_of(
        stub.SetRetentionPolicy,
        pb.SetRetentionPolicyRequest(workflow="never", statuses=[R_SUSPENDED], keep=duration(timedelta(days=1))),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "statuses" in message, message


def test_list_workflows_counts_suspended_runs(stub, unique) -> None:
    suspended_run(stub, unique)
    new_run(stub, unique)
    [summary] = [w for w in stub.ListWorkflows(pb.ListWorkflowsRequest()).workflows if w.workflow == unique]
    counts = [(count.status, count.run_count) for count in summary.run_counts]
    assert counts == [(R_RUNNING, 1), (R_COMPLETED, 0), (R_FAILED, 0), (R_CANCELLED, 0), (R_SUSPENDED, 1)]


def test_list_runs_filters_by_suspended(stub, unique) -> None:
    run = suspended_run(stub, unique)
    new_run(stub, unique)
    page = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=unique, statuses=[R_SUSPENDED])))
    assert [r.run_id for r in page.runs] == [run.run_id]


def test_suspend_and_resume_are_events_and_the_watch_goes_on(stub) -> None:
    run = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=R_SUSPENDED))
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=R_COMPLETED))
    events = list(stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=30))
    assert [e.event.run_changed.status for e in events] == [R_RUNNING, R_SUSPENDED, R_COMPLETED]


# Steps.

PATH_TO = {PENDING: [], SCHEDULED: [SCHEDULED], RUNNING: [RUNNING], SUCCEEDED: [SUCCEEDED], FAILED: [FAILED]}


@pytest.mark.parametrize("source", [*PATH_TO, SUSPENDED], ids=_step_name)
def test_set_step_suspended_from_each_status(stub, source: int) -> None:
    step = step_in(stub, PATH_TO.get(source, []))
    if source == SUSPENDED:
        step = suspend(stub, step.step_id)
    before = _read(stub, step)
    ended = ending_of(stub.SetStepSuspended, pb.SetStepSuspendedRequest(step_id=step.step_id))
    after = _read(stub, step)
    if source in (PENDING, SCHEDULED, RUNNING):
        assert ended.code == grpc.StatusCode.OK, ended.message
        assert after.status == SUSPENDED and after.attempt_count == 1
        assert history_of(stub, step.run_id, step.step_name)[-1].status == SUSPENDED
    elif source == SUSPENDED:
        assert ended.code == grpc.StatusCode.OK, ended.message
        assert after == before, "suspending a suspended step is a no-op"
    else:
        assert (ended.code, ended.reason) == (PRECONDITION, "ILLEGAL_TRANSITION"), ended
        assert (ended.metadata["prior_status"], ended.metadata["target_status"]) == (_step_name(source), "SUSPENDED"), ended
        assert after == before


# The contract: the calls that may move a suspended step, and where.
SET_TARGETS = [SCHEDULED, RUNNING, SUCCEEDED, FAILED]


@pytest.mark.parametrize("target", SET_TARGETS, ids=_step_name)
def test_a_suspended_step_resumes_with_the_set_calls(stub, target: int) -> None:
    step = suspend(stub, new_step(stub, new_run(stub).run_id).step_id)
    after = move_step(stub, step.step_id, target)
    assert after.status == target and after.attempt_count == 1
    attempt = history_of(stub, step.run_id, step.step_name)[-1]
    assert attempt.status == target
    stamp = {SCHEDULED: "scheduled_time", RUNNING: "running_time", SUCCEEDED: "succeeded_time", FAILED: "failed_time"}[target]
    assert attempt.HasField(stamp) and getattr(attempt, stamp) == getattr(after, stamp)


def test_a_suspended_step_takes_no_retry_attempt(stub) -> None:
    step = suspend(stub, new_step(stub, new_run(stub).run_id).step_id)
    code, reason, _, metadata = reason_of(stub.CreateRetryAttempt, pb.CreateRetryAttemptRequest(step_id=step.step_id, status=PENDING))
    assert (code, reason, metadata["prior_status"]) == (PRECONDITION, "ILLEGAL_TRANSITION", "SUSPENDED"), metadata
    assert _read(stub, step) == step


def test_a_step_of_a_finished_run_cannot_be_suspended(stub) -> None:
    run = new_run(stub)
    step = new_step(stub, run.run_id)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=R_CANCELLED))
    code, reason, _, metadata = reason_of(stub.SetStepSuspended, pb.SetStepSuspendedRequest(step_id=step.step_id))
    assert (code, reason, metadata["run_status"]) == (PRECONDITION, "FINISHED_RUN", "CANCELLED"), metadata
    assert _read(stub, step).status == PENDING


def test_set_step_suspended_bad_input(stub) -> None:
    for request, code, field in [
        (pb.SetStepSuspendedRequest(step_id=""), grpc.StatusCode.INVALID_ARGUMENT, "step_id"),
        (pb.SetStepSuspendedRequest(step_id="nope"), grpc.StatusCode.INVALID_ARGUMENT, "step_id"),
        (pb.SetStepSuspendedRequest(step_id="00000000-0000-0000-0000-000000000000"), grpc.StatusCode.NOT_FOUND, "step"),
    ]:
        ended = ending_of(stub.SetStepSuspended, request)
        assert (ended.code, ended.reason) == (code, "MISSING" if code == grpc.StatusCode.NOT_FOUND else "INVALID_ARGUMENT"), ended
        assert field in ended.message, ended


def test_dispatch_never_hands_out_a_suspended_step(stub, rpc) -> None:
    [held] = scheduled_steps(stub, rpc, 1)
    suspend(stub, held.step_id)
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [marker] = scheduled_steps(stub, rpc, 1)  # due after the suspended one: the stream gets only it
    assert worker.expect("task").step_id == marker.step_id
    assert _read(stub, held).status == SUSPENDED
    worker.cancel()


def test_a_worker_holding_a_suspended_attempt_loses_it(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], worker_id="holder")
    [step] = scheduled_steps(stub, rpc, 1)
    task = worker.expect("task")
    suspended = suspend(stub, step.step_id)
    assert suspended.status == SUSPENDED and suspended.worker_id == "", "the attempt leaves its worker"

    worker.complete(task, '{"late": true}')
    refused = worker.expect("refused")
    assert (refused.step_id, refused.attempt, refused.code) == (step.step_id, 1, REFUSED_PRECONDITION)
    assert (refused.reason, refused.metadata["prior_status"]) == ("ILLEGAL_TRANSITION", "SUSPENDED"), refused
    worker.fail(task, "late failure")
    refused = worker.expect("refused")
    assert (refused.code, refused.reason, refused.metadata["prior_status"]) == (REFUSED_PRECONDITION, "ILLEGAL_TRANSITION", "SUSPENDED"), refused
    after = _read(stub, step)
    assert after.status == SUSPENDED and not after.HasField("result_json") and not after.HasField("error")
    worker.cancel()


def test_workers_keep_their_attempts_while_the_run_is_suspended_and_are_told_when_it_finishes(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1)
    [first, second] = scheduled_steps(stub, rpc, 2)
    task = worker.expect("task")
    assert task.step_id == first.step_id
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=first.run_id, status=R_SUSPENDED))
    # Not finished: no cancel comes, and the attempt's result is taken.
    worker.complete(task)
    assert worker.expect("accepted").status == SUCCEEDED
    worker.credit()
    held = worker.expect("task")
    assert held.step_id == second.step_id, "a suspended run's scheduled steps are still handed out"
    # Leaving SUSPENDED for a finished status tells the worker, as leaving RUNNING does (the trigger run_finished).
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=first.run_id, status=R_FAILED, error=pb.Failure(message="gave up")))
    cancel = worker.expect("cancel")
    assert (cancel.step_id, cancel.reason) == (held.step_id, "the run is FAILED")
    worker.cancel()
