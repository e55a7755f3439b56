"""Every step and run transition, legal and illegal, with its exact status code.

The expected tables are written out here from the contract's text, independently of
server/state/transitions.py, so a wrong table in the server fails these tests.
"""

from __future__ import annotations

import grpc
import pytest
from support.flows import error_info_of, move_step, new_run, new_step, reason_of, status_of, step_in

from workflowstate import v1 as pb

PENDING, SCHEDULED, RUNNING, SUCCEEDED, FAILED = (
    pb.STEP_STATUS_PENDING, pb.STEP_STATUS_SCHEDULED, pb.STEP_STATUS_RUNNING, pb.STEP_STATUS_SUCCEEDED, pb.STEP_STATUS_FAILED,
)  # fmt: skip

# How to bring a fresh step into each status.
PATH_TO = {PENDING: [], SCHEDULED: [SCHEDULED], RUNNING: [RUNNING], SUCCEEDED: [SUCCEEDED], FAILED: [FAILED]}
# The contract: which set-status calls each status accepts (besides repeating its own status).
LEGAL_SET = {
    PENDING: {SCHEDULED, RUNNING, SUCCEEDED, FAILED},
    SCHEDULED: {RUNNING, SUCCEEDED, FAILED},
    RUNNING: {SUCCEEDED, FAILED},
    SUCCEEDED: set(),
    FAILED: set(),
}
SET_TARGETS = [SCHEDULED, RUNNING, SUCCEEDED, FAILED]


def _name(status: int) -> str:
    return pb.StepStatus.Name(status).removeprefix("STEP_STATUS_")


def _read(stub, step: pb.StepState) -> pb.StepState:
    return stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step


@pytest.mark.parametrize("source", list(PATH_TO), ids=_name)
@pytest.mark.parametrize("target", SET_TARGETS, ids=_name)
def test_step_set_status(stub, source: int, target: int) -> None:
    step = step_in(stub, PATH_TO[source])
    before = _read(stub, step)
    try:
        after = move_step(stub, step.step_id, target)
        code, message, reason, metadata = grpc.StatusCode.OK, "", "", {}
    except grpc.RpcError as err:
        code, message = err.code(), err.details()
        reason, _, metadata = error_info_of(err)

    if target in LEGAL_SET[source]:
        assert code == grpc.StatusCode.OK, message
        assert after.status == target
        assert after.update_time.ToDatetime() >= before.update_time.ToDatetime()
        stamp = {SCHEDULED: "scheduled_time", RUNNING: "running_time", SUCCEEDED: "succeeded_time", FAILED: "failed_time"}[target]
        assert after.HasField(stamp)
    elif target == source:
        assert code == grpc.StatusCode.OK, message
        assert _read(stub, step) == before, "repeating the current status must change nothing"
    else:
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION"), message
        assert (metadata["prior_status"], metadata["target_status"]) == (_name(source), _name(target)), metadata
        assert _read(stub, step) == before, "a refused transition must write nothing"


@pytest.mark.parametrize("source", list(PATH_TO), ids=_name)
@pytest.mark.parametrize("start", [PENDING, RUNNING], ids=_name)
def test_retry_attempt_only_after_failure(stub, source: int, start: int) -> None:
    step = step_in(stub, PATH_TO[source])
    request = pb.CreateRetryAttemptRequest(step_id=step.step_id, status=start)
    if source == FAILED:
        code, message = status_of(stub.CreateRetryAttempt, request)
        after = _read(stub, step)
        assert code == grpc.StatusCode.OK, message
        assert (after.status, after.attempt_count) == (start, 2)
        assert not after.HasField("result_json") and not after.HasField("error")
        assert after.HasField("running_time") == (start == RUNNING)
        assert not after.HasField("failed_time")
    else:
        code, reason, _, metadata = reason_of(stub.CreateRetryAttempt, request)
        after = _read(stub, step)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION")
        assert metadata["prior_status"] == _name(source), metadata
        assert (after.status, after.attempt_count) == (source, 1)


@pytest.mark.parametrize("status", [SCHEDULED, SUCCEEDED, FAILED, pb.STEP_STATUS_UNSPECIFIED, 42], ids=str)
def test_retry_attempt_refuses_other_start_statuses(stub, status: int) -> None:
    step = step_in(stub, [FAILED])
    code, message = status_of(stub.CreateRetryAttempt, pb.CreateRetryAttemptRequest(step_id=step.step_id, status=status))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "status" in message
    assert _read(stub, step).attempt_count == 1


RUN_STATUSES = [pb.RUN_STATUS_RUNNING, pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_CANCELLED]
TERMINAL = {pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_CANCELLED}


def _run_name(status: int) -> str:
    return pb.RunStatus.Name(status).removeprefix("RUN_STATUS_")


@pytest.mark.parametrize("source", RUN_STATUSES, ids=_run_name)
@pytest.mark.parametrize("target", RUN_STATUSES, ids=_run_name)
def test_run_status(stub, source: int, target: int) -> None:
    run = new_run(stub)
    if source != pb.RUN_STATUS_RUNNING:
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=source))
    before = stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run
    request = pb.UpdateRunStatusRequest(run_id=run.run_id, status=target)
    if source != target and source != pb.RUN_STATUS_RUNNING:
        code, reason, _, metadata = reason_of(stub.UpdateRunStatus, request)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FINISHED_RUN")
        assert (metadata["prior_status"], metadata["target_status"]) == (_run_name(source), _run_name(target)), metadata
        assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run == before
        return
    code, message = status_of(stub.UpdateRunStatus, request)
    after = stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run
    if source == target:
        assert code == grpc.StatusCode.OK, message
        assert after == before
    else:
        assert code == grpc.StatusCode.OK, message
        assert after.status == target


@pytest.mark.parametrize("terminal", sorted(TERMINAL), ids=_run_name)
def test_finished_run_refuses_step_writes(stub, terminal: int) -> None:
    run = new_run(stub)
    running = new_step(stub, run.run_id, "running")
    move_step(stub, running.step_id, RUNNING)
    failed = new_step(stub, run.run_id, "failed")
    move_step(stub, failed.step_id, FAILED)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=terminal))

    refused = [
        reason_of(stub.InsertStepState, pb.InsertStepStateRequest(run_id=run.run_id, step_name="late", rpc_name="r")),
        reason_of(stub.SetStepResult, pb.SetStepResultRequest(step_id=running.step_id, result_json="1")),
        reason_of(stub.SetStepError, pb.SetStepErrorRequest(step_id=running.step_id, error=pb.Failure(message="x"))),
        reason_of(stub.CreateRetryAttempt, pb.CreateRetryAttemptRequest(step_id=failed.step_id, status=PENDING)),
    ]
    for code, reason, _, metadata in refused:
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FINISHED_RUN")
        assert metadata["run_status"] == _run_name(terminal), metadata
    history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
    assert [(a.step_name, a.status) for a in history] == [("running", RUNNING), ("failed", FAILED)]


def test_repeated_result_must_match(stub) -> None:
    step = step_in(stub, [RUNNING])
    first = stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json='{"v": 1}')).step
    # Same value, other spelling: JSON equality, not text equality.
    again = stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json='{ "v" : 1 }')).step
    assert again == first
    code, reason, _, metadata = reason_of(stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json='{"v": 2}'))
    assert (code, reason, metadata["prior_status"]) == (grpc.StatusCode.FAILED_PRECONDITION, "DIFFERENT_PAYLOAD", "SUCCEEDED")
    assert _read(stub, step).result_json == first.result_json


def test_repeated_error_must_match(stub) -> None:
    step = step_in(stub, [RUNNING])
    failure = pb.Failure(message="boom", stack="at f()", code="E1")
    first = stub.SetStepError(pb.SetStepErrorRequest(step_id=step.step_id, error=failure)).step
    assert stub.SetStepError(pb.SetStepErrorRequest(step_id=step.step_id, error=failure)).step == first
    other = pb.Failure(message="other")
    code, reason, _, metadata = reason_of(stub.SetStepError, pb.SetStepErrorRequest(step_id=step.step_id, error=other))
    assert (code, reason, metadata["prior_status"]) == (grpc.StatusCode.FAILED_PRECONDITION, "DIFFERENT_PAYLOAD", "FAILED")


def test_repeated_terminal_run_status_must_match_its_output(stub) -> None:
    run = new_run(stub)
    done = pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json='{"r": 1}')
    first = stub.UpdateRunStatus(done).run
    assert stub.UpdateRunStatus(done).run == first
    # Repeating without an output is a no-op too.
    assert stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED)).run == first
    code, reason, _, metadata = reason_of(
        stub.UpdateRunStatus,
        pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json='{"r": 2}'),
    )
    assert (code, reason, metadata["prior_status"]) == (grpc.StatusCode.FAILED_PRECONDITION, "DIFFERENT_PAYLOAD", "COMPLETED")
