"""One role per effect, on every path: each role against each path to an effect (an RPC alone, the
same call as a Batch operation, another RPC with the same effect), over the wire, with the rows
read back to show that a refusal wrote nothing.

The roles expected here are the README's table (Auth), written out again on purpose: the test
states the policy, it does not read it from the code it checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.auth_tokens import OTHER_WORKER_TOKEN, TOKENS, metadata, streams_as, write_token_file
from support.bidi_stream import duration
from support.flows import Ending, error_info_of
from support.server_process import ServerProcess
from support.task_stream import TaskStream

from workflowstate.server.rpc.tokens import Role
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

ALLOWED = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
# A step due this far ahead stays SCHEDULED for the whole test: no worker is handed it.
LATER = duration(timedelta(hours=1))


@pytest.fixture
def auth_server(start_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    return start_server("--auth-tokens", str(write_token_file(tmp_path)))


@pytest.fixture
def stub(auth_server: ServerProcess) -> Iterator[pb_grpc.WorkflowStateServiceStub]:
    with grpc.insecure_channel(auth_server.target) as channel:
        yield pb_grpc.WorkflowStateServiceStub(channel)


def as_role(role: Role) -> tuple[tuple[str, str], ...]:
    return metadata(TOKENS[role])


ADMIN = as_role(Role.ADMIN)


def code_of(call: Callable[..., Any], *args: Any) -> Ending:
    """How `call(*args)` ends (a Batch of one: as its operation does): code, message, reason, metadata."""
    try:
        response = call(*args)
    except grpc.RpcError as err:
        reason, _, metadata = error_info_of(err)
        return Ending(err.code(), err.details() or "", reason, metadata)
    if isinstance(response, pb.BatchResponse):
        [result] = response.results
        if result.WhichOneof("result") == "error":
            code = grpc.StatusCode(next(code for code in grpc.StatusCode if code.value[0] == result.error.code))
            return Ending(code, result.error.message, result.error.reason, dict(result.error.metadata))
    return Ending(ALLOWED, "", "", {})


# --- cancelling a run: admin, whichever RPC makes it --------------------------------------------

# Each path: (a call as `md` on the run of `workflow`, the status the run has when it was allowed).
RUN_PATHS: dict[str, tuple[Callable[[pb_grpc.WorkflowStateServiceStub, str, str, Any], Any], int]] = {
    "CancelRun": (lambda stub, run, workflow, md: stub.CancelRun(pb.CancelRunRequest(run_id=run), metadata=md), pb.RUN_STATUS_CANCELLED),
    "CancelRuns": (
        lambda stub, run, workflow, md: stub.CancelRuns(pb.CancelRunsRequest(filter=pb.RunFilter(workflow=workflow), max_runs=10), metadata=md),
        pb.RUN_STATUS_CANCELLED,
    ),
    "UpdateRunStatus to CANCELLED": (
        lambda stub, run, workflow, md: stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run, status=pb.RUN_STATUS_CANCELLED), metadata=md),
        pb.RUN_STATUS_CANCELLED,
    ),
    "Batch: UpdateRunStatus to CANCELLED": (
        lambda stub, run, workflow, md: stub.Batch(
            pb.BatchRequest(
                operations=[pb.BatchOperation(update_run_status=pb.UpdateRunStatusRequest(run_id=run, status=pb.RUN_STATUS_CANCELLED))]
            ),
            metadata=md,
        ),
        pb.RUN_STATUS_CANCELLED,
    ),
    # Finishing a run the workflow drove is not a cancel: a write token's, alone or batched.
    "UpdateRunStatus to COMPLETED": (
        lambda stub, run, workflow, md: stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run, status=pb.RUN_STATUS_COMPLETED), metadata=md),
        pb.RUN_STATUS_COMPLETED,
    ),
    "Batch: UpdateRunStatus to COMPLETED": (
        lambda stub, run, workflow, md: stub.Batch(
            pb.BatchRequest(
                operations=[pb.BatchOperation(update_run_status=pb.UpdateRunStatusRequest(run_id=run, status=pb.RUN_STATUS_COMPLETED))]
            ),
            metadata=md,
        ),
        pb.RUN_STATUS_COMPLETED,
    ),
}

CANCEL = {Role.ADMIN}
DRIVE_RUN = {Role.WRITE, Role.ADMIN}
RUN_EXPECTED = {path: (DRIVE_RUN if "COMPLETED" in path else CANCEL) for path in RUN_PATHS}
# What a write token is told when its UpdateRunStatus is a cancel.
CANCEL_REFUSAL = {
    "UpdateRunStatus to CANCELLED": "a 'write' token may not cancel a run (UpdateRunStatus to RUN_STATUS_CANCELLED): it needs an 'admin' token",
    "Batch: UpdateRunStatus to CANCELLED": (
        "a 'write' token may not cancel a run (UpdateRunStatus to RUN_STATUS_CANCELLED, operation 0 of the Batch): it needs an 'admin' token"
    ),
}


def test_cancelling_a_run_needs_admin_on_every_path(stub) -> None:
    wrong: list[str] = []
    for path, (call, allowed_status) in RUN_PATHS.items():
        for role in Role:
            workflow = f"effects-{uuid.uuid4().hex[:10]}"
            run = stub.CreateRun(pb.CreateRunRequest(workflow=workflow), metadata=ADMIN).run.run_id
            code, message, reason, _ = code_of(call, stub, run, workflow, as_role(role))
            status = stub.GetRun(pb.GetRunRequest(run_id=run), metadata=ADMIN).run.status
            allowed = role in RUN_EXPECTED[path]
            expected = (ALLOWED, allowed_status) if allowed else (DENIED, pb.RUN_STATUS_RUNNING)
            if (code, status) != expected:
                wrong.append(f"{role.value} {path}: {code.name} {pb.RunStatus.Name(status)} ({message})")
            elif not allowed and reason != "ROLE_NOT_PERMITTED":
                wrong.append(f"{role.value} {path}: refused as {reason!r}, not ROLE_NOT_PERMITTED ({message})")
            said = CANCEL_REFUSAL.get(path)
            if not allowed and role is Role.WRITE and said is not None and message != said:
                wrong.append(f"{role.value} {path}: the refusal does not say it is a cancel: {message}")
    assert not wrong, "\n".join(wrong)


# --- a worker's task: workers take it and report it; write tokens claim the engine's steps ---------

# Each path: a call on the step (step_id, run_id, step_name, rpc_name) as `md`.
StepCall = Callable[[pb_grpc.WorkflowStateServiceStub, pb.StepState, Any], Any]
STEP_PATHS: dict[str, StepCall] = {
    "ClaimStep": lambda stub, step, md: stub.ClaimStep(
        pb.ClaimStepRequest(run_id=step.run_id, step_name=step.step_name, rpc_name=step.rpc_name), metadata=md
    ),
    "SetStepRunning": lambda stub, step, md: stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id), metadata=md),
    "SetStepResult": lambda stub, step, md: stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json="1"), metadata=md),
    "SetStepError": lambda stub, step, md: stub.SetStepError(
        pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="taken")), metadata=md
    ),
    "Batch: SetStepRunning": lambda stub, step, md: stub.Batch(
        pb.BatchRequest(operations=[pb.BatchOperation(set_step_running=pb.SetStepRunningRequest(step_id=step.step_id))]), metadata=md
    ),
    "Batch: SetStepResult": lambda stub, step, md: stub.Batch(
        pb.BatchRequest(operations=[pb.BatchOperation(set_step_result=pb.SetStepResultRequest(step_id=step.step_id, result_json="1"))]),
        metadata=md,
    ),
    "Batch: SetStepError": lambda stub, step, md: stub.Batch(
        pb.BatchRequest(
            operations=[pb.BatchOperation(set_step_error=pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="taken")))]
        ),
        metadata=md,
    ),
}

WORKER_TASK_BY_UNARY_CALL = {Role.ADMIN}  # needs write (the call) and worker (the task): admin only
ENGINE_STEP = {Role.WRITE, Role.ADMIN}


def test_a_workers_task_is_not_a_write_tokens_but_the_engines_steps_are(stub, rpc) -> None:
    run = stub.CreateRun(pb.CreateRunRequest(workflow="effects-steps"), metadata=ADMIN).run.run_id

    def step(rpc_name: str, *, scheduled: bool = True) -> pb.StepState:
        name = f"s-{uuid.uuid4().hex[:10]}"
        inserted = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run, step_name=name, rpc_name=rpc_name), metadata=ADMIN).step
        if not scheduled:
            return inserted
        return stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=inserted.step_id, delay=LATER), metadata=ADMIN).step

    # A worker serves `rpc` and holds one task of it (no credit left): the other steps of `rpc` wait.
    worker = TaskStream(streams_as(stub, Role.WORKER))
    worker.subscribe([rpc], max_in_flight=1, worker_id="serving")
    held = step(rpc, scheduled=False)
    stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=held.step_id), metadata=ADMIN)
    task = worker.expect("task")
    assert task.step_id == held.step_id

    # Which steps are a worker's task: due for a connected worker of their rpc name. Those of an rpc
    # name no worker serves, without one, or not scheduled yet are the engine's to claim and run.
    kinds: dict[str, tuple[Callable[[], pb.StepState], set[Role]]] = {
        "due for a connected worker": (lambda: step(rpc), WORKER_TASK_BY_UNARY_CALL),
        "of an rpc name no worker serves": (lambda: step(f"nobody-{uuid.uuid4().hex[:8]}"), ENGINE_STEP),
        "without an rpc name": (lambda: step(""), ENGINE_STEP),
        "pending, of a served rpc name": (lambda: step(rpc, scheduled=False), ENGINE_STEP),
    }
    wrong: list[str] = []
    for kind, (make, allowed_roles) in kinds.items():
        for path, call in STEP_PATHS.items():
            for role in Role:
                target = make()
                code, message, reason, _ = code_of(call, stub, target, as_role(role))
                after = stub.GetStepState(pb.GetStepStateRequest(run_id=run, step_name=target.step_name), metadata=ADMIN).step
                allowed = role in allowed_roles
                if code != (ALLOWED if allowed else DENIED):
                    wrong.append(f"{role.value} {path}, a step {kind}: {code.name} ({message})")
                elif not allowed and (after.status, after.attempt_count) != (target.status, target.attempt_count):
                    wrong.append(f"{role.value} {path}, a step {kind}: refused, but the step is {pb.StepStatus.Name(after.status)}")
                elif not allowed and role is Role.WRITE and reason != "WORKER_TASK":
                    wrong.append(f"{role.value} {path}, a step {kind}: refused as {reason!r}, not WORKER_TASK: {message}")

    # The task the worker holds: a write token cannot set its result or error; claiming it or setting
    # it running answers it as it is (RUNNING already: nothing to do) and takes nothing away. The
    # worker's own result is the one kept.
    for path, call in STEP_PATHS.items():
        code, message, reason, context = code_of(call, stub, held, as_role(Role.WRITE))
        named = (reason, context.get("worker_id"), context.get("attempt_count"))
        if ("Result" in path or "Error" in path) and (code != DENIED or named != ("WORKER_TASK", "serving", "1")):
            wrong.append(f"write {path}, the held task: {code.name} {named} ({message})")
    claim = stub.ClaimStep(pb.ClaimStepRequest(run_id=run, step_name=held.step_name, rpc_name=rpc), metadata=as_role(Role.WRITE))
    if claim.claimed:
        wrong.append("write ClaimStep took the held task")
    assert not wrong, "\n".join(wrong)
    still = stub.GetStepState(pb.GetStepStateRequest(run_id=run, step_name=held.step_name), metadata=ADMIN).step
    assert (still.status, still.attempt_count, still.worker_id) == (pb.STEP_STATUS_RUNNING, 1, "serving")
    worker.complete(task, '{"by": "worker"}')
    assert worker.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
    stored = stub.GetStepState(pb.GetStepStateRequest(run_id=run, step_name=held.step_name), metadata=ADMIN).step
    assert stored.result_json == '{"by": "worker"}'
    worker.close()
    assert worker.next() == grpc.StatusCode.OK


# --- adopting a task through subscribe.running: only one's own, or one whose worker is gone ------


def test_a_worker_adopts_only_its_own_tasks_or_those_of_a_gone_worker(start_server, tmp_path, rpc) -> None:
    tokens = str(write_token_file(tmp_path))
    schema = f"t_{uuid.uuid4().hex[:10]}"
    first, second = start_server("--auth-tokens", tokens, schema=schema), start_server("--auth-tokens", tokens, schema=schema)
    with grpc.insecure_channel(first.target) as first_channel, grpc.insecure_channel(second.target) as second_channel:
        first_stub = pb_grpc.WorkflowStateServiceStub(first_channel)
        second_stub = pb_grpc.WorkflowStateServiceStub(second_channel)
        holder = TaskStream(streams_as(first_stub, Role.WORKER))
        holder.subscribe([rpc], max_in_flight=3, worker_id="holder")
        run = second_stub.CreateRun(pb.CreateRunRequest(workflow="effects-adopt"), metadata=ADMIN).run.run_id
        for name in ("one", "two", "three"):
            step = second_stub.InsertStepState(pb.InsertStepStateRequest(run_id=run, step_name=name, rpc_name=rpc), metadata=ADMIN).step
            second_stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id), metadata=ADMIN)
        tasks = {}
        for _ in range(3):
            task = holder.expect("task")
            tasks[task.step_name] = task

        def subscribing(worker_id: str, name: str, token: str) -> TaskStream:
            stream = TaskStream(streams_as(second_stub, Role.WORKER, token))
            running = [pb.StepTaskAck(step_id=tasks[name].step_id, attempt=1)]
            subscribe = pb.StepTaskSubscribe(worker_id=worker_id, rpc_names=[rpc], max_in_flight=1, running=running)
            stream.send(pb.StreamStepTasksRequest(subscribe=subscribe))
            return stream

        def stored(name: str) -> pb.StepState:
            return second_stub.GetStepState(pb.GetStepStateRequest(run_id=run, step_name=name), metadata=ADMIN).step

        # Other workers name the live holder's task: under another worker_id with the same token, or
        # under the holder's worker_id with another token. Refused, nothing adopted.
        for worker_id, token in (("thief", TOKENS[Role.WORKER]), ("holder", OTHER_WORKER_TOKEN)):
            message = subscribing(worker_id, "one", token).expect_end(grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION")
            assert f"attempt 1 of step {tasks['one'].step_id} is held by worker 'holder', which is still connected" in message
            assert "nothing was adopted" in message
            assert (stored("one").status, stored("one").worker_id) == (pb.STEP_STATUS_RUNNING, "holder")

        # The holder's result stands.
        holder.complete(tasks["one"], '{"by": "holder"}')
        assert holder.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
        assert stored("one").result_json == '{"by": "holder"}'

        # The holder itself, reconnecting (same worker_id and token) while its old stream lives on, takes its task back.
        again = subscribing("holder", "two", TOKENS[Role.WORKER])
        assert [(a.step_id, a.attempt) for a in again.expect("subscribed").adopted] == [(tasks["two"].step_id, 1)]

        # The first server shuts down: the task its stream held stays running, its worker gone; any worker may take it back.
        assert first.stop() == 0
        holder.expect_end(grpc.StatusCode.UNAVAILABLE)
        heir = subscribing("heir", "three", OTHER_WORKER_TOKEN)
        assert [(a.step_id, a.attempt) for a in heir.expect("subscribed").adopted] == [(tasks["three"].step_id, 1)]
        for stream, name in ((again, "two"), (heir, "three")):
            stream.complete(tasks[name], '{"by": "the stream that took it back"}')
            assert stream.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
            stream.close()
            assert stream.next() == grpc.StatusCode.OK
