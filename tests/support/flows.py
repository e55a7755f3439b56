"""Small steps of the state model over the raw stub, shared by the wire-level tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc

from support.error_info import error_info_of
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

Stub = pb_grpc.WorkflowStateServiceStub


def status_of(call: Callable[[Any], Any], request: Any) -> tuple[grpc.StatusCode, str]:
    """The status code and message a call ends with (OK and '' on success)."""
    ended = ending_of(call, request)
    return ended.code, ended.message


def reason_of(call: Callable[[Any], Any], request: Any) -> tuple[grpc.StatusCode, str, str, dict[str, str]]:
    """A refused call's code and the ErrorInfo of its status details (reason, domain, metadata), parsed
    from the raw trailing metadata as any gRPC client would; the reason is '' when there is none."""
    try:
        call(request)
    except grpc.RpcError as err:
        return (err.code(), *error_info_of(err))
    raise AssertionError("the call succeeded; a refusal was expected")


class Ending(NamedTuple):
    """How a call ended: its code and message (for people) and its ErrorInfo's reason and metadata (for
    programs); OK with '', '' and {} when it succeeded."""

    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]


def ending_of(call: Callable[[Any], Any], request: Any) -> Ending:
    """How the call ended, for a test that checks both what a refusal says and what it names."""
    try:
        call(request)
    except grpc.RpcError as err:
        reason, _, metadata = error_info_of(err)
        return Ending(err.code(), err.details() or "", reason, metadata)
    return Ending(grpc.StatusCode.OK, "", "", {})


def refusal_of(call: Callable[[Any], Any], request: Any) -> Ending:
    """How a call that must be refused ended."""
    ended = ending_of(call, request)
    assert ended.code != grpc.StatusCode.OK, "the call succeeded; a refusal was expected"
    return ended


def new_run(stub: Stub, workflow: str | None = None, input_json: str = '{"n": 1}') -> pb.Run:
    return stub.CreateRun(pb.CreateRunRequest(workflow=workflow or f"wf-{uuid.uuid4().hex[:8]}", input_json=input_json)).run


def new_step(stub: Stub, run_id: str, step_name: str = "step", **options: Any) -> pb.StepState:
    request = pb.InsertStepStateRequest(
        run_id=run_id, step_name=step_name, rpc_name="doWork", data_json='{"a": 1}', options=pb.StepOptions(**options)
    )
    return stub.InsertStepState(request).step


def move_step(stub: Stub, step_id: str, status: int) -> pb.StepState:
    """Apply the one call that sets `status` on a step."""
    if status == pb.STEP_STATUS_SCHEDULED:
        return stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step_id)).step
    if status == pb.STEP_STATUS_RUNNING:
        return stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step_id)).step
    if status == pb.STEP_STATUS_SUCCEEDED:
        return stub.SetStepResult(pb.SetStepResultRequest(step_id=step_id, result_json='{"ok": true}')).step
    if status == pb.STEP_STATUS_FAILED:
        return stub.SetStepError(pb.SetStepErrorRequest(step_id=step_id, error=pb.Failure(message="boom"))).step
    raise ValueError(f"no call sets status {status}")


def step_in(stub: Stub, path: list[int]) -> pb.StepState:
    """A new step of a new run, moved along `path` (statuses after PENDING)."""
    run = new_run(stub)
    step = new_step(stub, run.run_id)
    for status in path:
        step = move_step(stub, step.step_id, status)
    return step


def scheduled_steps(stub: Stub, rpc_name: str, count: int, *, run_id: str | None = None, **options: Any) -> list[pb.StepState]:
    """`count` steps of one run (a new one unless given) with this rpc_name, scheduled now."""
    run_id = run_id or new_run(stub).run_id
    steps = []
    for i in range(count):
        request = pb.InsertStepStateRequest(
            run_id=run_id, step_name=f"{rpc_name}-{i}", rpc_name=rpc_name, data_json=f'{{"i": {i}}}', options=pb.StepOptions(**options)
        )
        step = stub.InsertStepState(request).step
        steps.append(stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id)).step)
    return steps


def history_of(stub: Stub, run_id: str, step_name: str) -> list[pb.StepAttempt]:
    attempts = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run_id)).attempts
    return [attempt for attempt in attempts if attempt.step_name == step_name]
