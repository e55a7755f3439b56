"""The blocking client against a real server (the ``server_target`` fixture).

Each test makes its own runs with unique workflow names, so tests never see
each other's data and can run in any order. A few tests need a server that
misbehaves on cue, which the real one cannot be told to do: the timeout tests
use a socket that never answers, the retry tests a tiny in-process servicer
that answers UNAVAILABLE.
"""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest

import workflowstate.client
from workflowstate.client import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Failure,
    InvalidArgument,
    NotFound,
    Run,
    RunStatus,
    StepState,
    StepStatus,
    Unavailable,
    WorkflowStateClient,
    WorkflowStateError,
    WorkflowVersionStatus,
)
from workflowstate.client._channel import RETRYABLE_METHODS
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


def unique_name(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_utc(moment: datetime | None) -> None:
    assert moment is not None
    assert moment.utcoffset() == timedelta(0)


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


@pytest.fixture
def run(client: WorkflowStateClient) -> Run:
    return client.create_run(unique_name("checkout"), {"cart": 42})


@pytest.fixture
def step(client: WorkflowStateClient, run: Run) -> StepState:
    return client.insert_step_state(run.run_id, unique_name("charge"), "chargeCard", {"amount": 10})


def charge_card() -> None:
    raise ValueError("card declined")


# --- the package -------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert workflowstate.client.__all__ == [
        "Aborted",
        "AlreadyExists",
        "AsyncLease",
        "AsyncWorker",
        "AsyncWorkflowStateClient",
        "Batching",
        "ClaimedStep",
        "DeadlineExceeded",
        "DispatchDefaults",
        "FailedPrecondition",
        "Failure",
        "InsecureTokenWarning",
        "InvalidArgument",
        "Lease",
        "LeaseInfo",
        "LeaseLostReason",
        "LeasePage",
        "NonRetryableError",
        "NotFound",
        "PlannedStep",
        "PermissionDenied",
        "ResourceExhausted",
        "RetentionPolicy",
        "Run",
        "RunEvent",
        "RunPage",
        "RunStatus",
        "Schedule",
        "ScheduleCatchUp",
        "ScheduleOverlap",
        "SchedulePage",
        "StepAttempt",
        "StepChange",
        "StepRef",
        "StepOptions",
        "StepState",
        "StepStatus",
        "StepTask",
        "TaskCancellation",
        "TaskCancelled",
        "Unauthenticated",
        "Unavailable",
        "UndecodableJson",
        "UpsertedVersion",
        "Worker",
        "WorkerInfo",
        "WorkflowStateClient",
        "WorkflowStateError",
        "WorkflowSummary",
        "WorkflowVersion",
        "WorkflowVersionStatus",
    ]
    for name in workflowstate.client.__all__:
        assert getattr(workflowstate.client, name).__name__ == name


def test_client_imports_no_server_code() -> None:
    # Workers install only grpcio and protobuf: the client must not need more.
    code = (
        "import sys, workflowstate.client; "
        "print(sorted(m for m in sys.modules if m.startswith(('psycopg', 'workflowstate.server'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_enum_values_are_the_seed_api_strings() -> None:
    assert [s.value for s in RunStatus] == ["running", "completed", "failed", "cancelled", "suspended"]
    assert [s.value for s in StepStatus] == [
        "pending",
        "scheduled",
        "running",
        "succeeded",
        "failed",
        "suspended",
    ]
    assert [s.value for s in WorkflowVersionStatus] == ["draft", "active", "declined"]


# The engine-state methods, on both clients: their names and parameters, pinned.
ENGINE_METHODS = {
    "set_step_suspended": ["step_id", "fencing_token", "lease_key", "timeout"],
    "set_step_child_run": ["step_id", "child_run_id", "fencing_token", "lease_key", "timeout"],
    "set_step_branch": ["step_id", "branch_key", "fencing_token", "lease_key", "timeout"],
    "claim_step": ["run_id", "step_name", "rpc_name", "fencing_token", "lease_key", "timeout"],
    "update_run_state": ["run_id", "name", "value", "fencing_token", "lease_key", "timeout"],
    "get_run_state": ["run_id", "timeout"],
    "upsert_workflow_version": ["workflow", "graph_hash", "graph", "source", "status", "timeout"],
    "get_workflow_version": ["workflow", "graph_hash", "timeout"],
    "update_workflow_version_status": ["workflow", "graph_hash", "status", "timeout"],
    "list_stalled_runs": ["updated_before", "max_runs", "timeout"],
    "list_undispatched_steps": ["updated_before", "max_steps", "timeout"],
}


@pytest.mark.parametrize("client_class", [WorkflowStateClient, workflowstate.client.AsyncWorkflowStateClient])
def test_engine_methods_are_pinned(client_class: type) -> None:
    for name, parameters in ENGINE_METHODS.items():
        assert list(inspect.signature(getattr(client_class, name)).parameters)[1:] == parameters, name
    create_run = list(inspect.signature(client_class.create_run).parameters)
    assert create_run[1:] == ["workflow", "input", "request_id", "inline", "graph_hash", "metadata", "deterministic", "planned_steps", "timeout"]
    insert = inspect.signature(client_class.insert_step_state).parameters
    assert "from_step_name" in insert and insert["from_step_name"].kind is inspect.Parameter.KEYWORD_ONLY


# --- runs --------------------------------------------------------------------


def test_create_run_then_get_run(client: WorkflowStateClient) -> None:
    workflow = unique_name("checkout")
    created = client.create_run(workflow, {"cart": [1, 2], "note": "é", "gift": False})

    assert created.workflow == workflow
    assert created.status is RunStatus.RUNNING
    assert created.input == {"cart": [1, 2], "note": "é", "gift": False}
    assert created.output is None
    assert created.error is None
    uuid.UUID(created.run_id)
    assert_utc(created.create_time)
    assert_utc(created.update_time)
    assert client.get_run(created.run_id) == created


def test_create_run_without_input_stores_null(client: WorkflowStateClient) -> None:
    created = client.create_run(unique_name("empty"))
    assert created.input is None


def test_get_run_of_missing_run_is_none(client: WorkflowStateClient) -> None:
    assert client.get_run(str(uuid.uuid4())) is None


def test_create_run_with_same_request_id_returns_same_run(client: WorkflowStateClient) -> None:
    workflow, key = unique_name("idempotent"), uuid.uuid4().hex
    first = client.create_run(workflow, {"n": 1}, request_id=key)
    second = client.create_run(workflow, {"n": 1}, request_id=key)
    assert second.run_id == first.run_id


def test_create_run_without_request_id_creates_two_runs(client: WorkflowStateClient) -> None:
    workflow = unique_name("twice")
    assert client.create_run(workflow, 1).run_id != client.create_run(workflow, 1).run_id


def test_update_run_status_with_output_round_trips(client: WorkflowStateClient, run: Run) -> None:
    output = {"total": 12.5, "items": ["a", "b"], "paid": True, "coupon": None}
    updated = client.update_run_status(run.run_id, RunStatus.COMPLETED, output=output)

    assert updated.status is RunStatus.COMPLETED
    assert updated.output == output
    assert updated.error is None
    assert client.get_run(run.run_id) == updated


@pytest.mark.parametrize("output", [0, False, "", [], {}])
def test_update_run_status_sends_falsy_output(
    client: WorkflowStateClient, run: Run, output: Any
) -> None:
    updated = client.update_run_status(run.run_id, RunStatus.COMPLETED, output=output)
    assert updated.output == output
    assert type(updated.output) is type(output)


def test_update_run_status_failed_with_error(client: WorkflowStateClient, run: Run) -> None:
    failure = Failure("payment refused", stack="at pay()", code="E_PAY")
    updated = client.update_run_status(run.run_id, RunStatus.FAILED, error=failure)

    assert updated.status is RunStatus.FAILED
    assert updated.error == failure
    assert updated.output is None


def test_update_run_status_cancelled_without_output(client: WorkflowStateClient, run: Run) -> None:
    updated = client.update_run_status(run.run_id, RunStatus.CANCELLED)
    assert updated.status is RunStatus.CANCELLED
    assert updated.output is None
    assert updated.error is None


def test_finished_run_refuses_another_status(client: WorkflowStateClient, run: Run) -> None:
    client.update_run_status(run.run_id, RunStatus.COMPLETED, output=1)
    with pytest.raises(FailedPrecondition) as caught:
        client.update_run_status(run.run_id, RunStatus.FAILED, error=Failure("late"))
    assert caught.value.status == grpc.StatusCode.FAILED_PRECONDITION
    assert (caught.value.reason, caught.value.metadata["prior_status"]) == ("FINISHED_RUN", "COMPLETED")


def test_get_run_history_of_run_without_steps_is_empty(
    client: WorkflowStateClient, run: Run
) -> None:
    assert client.get_run_history(run.run_id) == []


def test_get_run_history_of_missing_run_raises_not_found(client: WorkflowStateClient) -> None:
    with pytest.raises(NotFound) as missing_run:
        client.get_run_history(str(uuid.uuid4()))
    assert (missing_run.value.reason, set(missing_run.value.metadata)) == ("MISSING", {"run_id"})


# --- steps -------------------------------------------------------------------


def test_insert_step_state_then_get_step_state(client: WorkflowStateClient, run: Run) -> None:
    name = unique_name("charge")
    inserted = client.insert_step_state(run.run_id, name, "chargeCard", {"amount": 10})

    assert inserted.run_id == run.run_id
    assert inserted.step_name == name
    assert inserted.rpc_name == "chargeCard"
    assert inserted.data == {"amount": 10}
    assert inserted.status is StepStatus.PENDING
    assert inserted.attempt_count == 1
    assert inserted.result is None
    assert inserted.error is None
    assert inserted.retries is None
    assert inserted.retry_delay is None
    assert_utc(inserted.create_time)
    assert_utc(inserted.update_time)
    assert inserted.scheduled_time is None
    assert inserted.running_time is None
    assert inserted.succeeded_time is None
    assert inserted.failed_time is None
    uuid.UUID(inserted.step_id)
    assert client.get_step_state(run.run_id, name) == inserted


def test_insert_step_state_retry_options_round_trip(client: WorkflowStateClient, run: Run) -> None:
    name = unique_name("ship")
    inserted = client.insert_step_state(
        run.run_id, name, "ship", retries=3, retry_delay=timedelta(seconds=1, milliseconds=500)
    )
    assert inserted.retries == 3
    assert inserted.retry_delay == timedelta(seconds=1.5)
    read = client.get_step_state(run.run_id, name)
    assert (read.retries, read.retry_delay) == (3, timedelta(seconds=1.5))


def test_insert_step_state_zero_retries_is_not_unset(client: WorkflowStateClient, run: Run) -> None:
    inserted = client.insert_step_state(
        run.run_id, unique_name("once"), "once", retries=0, retry_delay=timedelta(0)
    )
    assert inserted.retries == 0
    assert inserted.retry_delay == timedelta(0)


def test_insert_step_state_twice_raises_already_exists(
    client: WorkflowStateClient, step: StepState
) -> None:
    with pytest.raises(AlreadyExists) as caught:
        client.insert_step_state(step.run_id, step.step_name, "again")
    assert caught.value.status == grpc.StatusCode.ALREADY_EXISTS
    assert (caught.value.reason, caught.value.metadata["step_name"]) == ("DUPLICATE_NAME", step.step_name)


def test_get_step_state_of_missing_step_raises_not_found(
    client: WorkflowStateClient, run: Run
) -> None:
    with pytest.raises(NotFound) as caught:
        client.get_step_state(run.run_id, unique_name("missing"))
    assert caught.value.status == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "MISSING", caught.value.metadata
    assert caught.value.metadata["run_id"] == run.run_id, caught.value.metadata
    assert isinstance(caught.value, WorkflowStateError)


def test_flow_insert_running_result(client: WorkflowStateClient, step: StepState) -> None:
    running = client.set_step_running(step.step_id)
    assert running.status is StepStatus.RUNNING
    assert_utc(running.running_time)

    done = client.set_step_result(step.step_id, {"receipt": "r-1", "cents": 1000})
    assert done.status is StepStatus.SUCCEEDED
    assert done.result == {"receipt": "r-1", "cents": 1000}
    assert done.error is None
    assert_utc(done.succeeded_time)
    assert done.running_time == running.running_time
    assert client.get_step_state(step.run_id, step.step_name) == done


def test_flow_error_retry_running_result(client: WorkflowStateClient, step: StepState) -> None:
    client.set_step_running(step.step_id)
    failure = Failure("timeout talking to bank", stack="at charge()", code="E_TIMEOUT")
    failed = client.set_step_error(step.step_id, failure)
    assert failed.status is StepStatus.FAILED
    assert failed.error == failure
    assert_utc(failed.failed_time)

    retry = client.create_retry_attempt(step.step_id)
    assert retry.step_id == step.step_id
    assert retry.status is StepStatus.PENDING
    assert retry.attempt_count == 2
    assert retry.result is None
    assert retry.error is None

    client.set_step_running(step.step_id)
    client.set_step_result(step.step_id, {"receipt": "r-2"})

    latest = client.get_step_state(step.run_id, step.step_name)
    assert latest.status is StepStatus.SUCCEEDED
    assert latest.attempt_count == 2
    assert latest.result == {"receipt": "r-2"}
    assert latest.error is None

    history = client.get_run_history(step.run_id)
    assert [(a.step_id, a.step_name, a.attempt, a.status) for a in history] == [
        (step.step_id, step.step_name, 1, StepStatus.FAILED),
        (step.step_id, step.step_name, 2, StepStatus.SUCCEEDED),
    ]
    first, second = history
    assert first.error == failure
    assert first.result is None
    assert second.result == {"receipt": "r-2"}
    assert second.error is None
    assert_utc(first.create_time)
    assert_utc(second.update_time)
    assert first.create_time <= second.create_time


def test_create_retry_attempt_can_start_running(
    client: WorkflowStateClient, step: StepState
) -> None:
    client.set_step_error(step.step_id, Failure("flaky"))
    retry = client.create_retry_attempt(step.step_id, StepStatus.RUNNING)
    assert retry.status is StepStatus.RUNNING
    assert retry.attempt_count == 2


def test_flow_pending_straight_to_succeeded(client: WorkflowStateClient, step: StepState) -> None:
    done = client.set_step_result(step.step_id, [1, "two", None])
    assert done.status is StepStatus.SUCCEEDED
    assert done.result == [1, "two", None]
    assert done.running_time is None


def test_flow_pending_straight_to_failed(client: WorkflowStateClient, step: StepState) -> None:
    failed = client.set_step_error(step.step_id, Failure("bad input"))
    assert failed.status is StepStatus.FAILED
    assert failed.error == Failure("bad input")


def test_flow_scheduled_to_succeeded(client: WorkflowStateClient, step: StepState) -> None:
    scheduled = client.set_step_scheduled(step.step_id)
    assert scheduled.status is StepStatus.SCHEDULED
    assert_utc(scheduled.scheduled_time)

    done = client.set_step_result(step.step_id, "slept")
    assert done.status is StepStatus.SUCCEEDED
    assert done.result == "slept"
    assert done.scheduled_time == scheduled.scheduled_time


def test_set_step_error_from_raised_exception(client: WorkflowStateClient, step: StepState) -> None:
    with pytest.raises(ValueError) as caught:
        charge_card()
    failed = client.set_step_error(step.step_id, caught.value)

    assert failed.error is not None
    assert failed.error.message == "card declined"
    assert failed.error.code == "ValueError"
    assert "charge_card" in failed.error.stack
    assert "Traceback" in failed.error.stack


def test_set_step_error_from_exception_without_message(
    client: WorkflowStateClient, step: StepState
) -> None:
    failed = client.set_step_error(step.step_id, KeyError())
    assert failed.error is not None
    assert failed.error.message == "KeyError"
    assert failed.error.code == "KeyError"


def test_illegal_transition_raises_failed_precondition(
    client: WorkflowStateClient, step: StepState
) -> None:
    client.set_step_result(step.step_id, 1)
    with pytest.raises(FailedPrecondition) as illegal:
        client.set_step_running(step.step_id)
    assert (illegal.value.reason, illegal.value.metadata["prior_status"], illegal.value.metadata["target_status"]) == ("ILLEGAL_TRANSITION", "SUCCEEDED", "RUNNING")


# --- errors, timeouts, channel -----------------------------------------------


def test_invalid_uuid_raises_invalid_argument_with_status(client: WorkflowStateClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.get_step_state("not-a-uuid", "step")
    error = caught.value
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.metadata) == ("INVALID_ARGUMENT", {"field": "run_id"})
    assert error.message
    assert isinstance(error.__cause__, grpc.RpcError)


def test_value_that_is_not_json_fails_before_sending(
    client: WorkflowStateClient, step: StepState
) -> None:
    with pytest.raises(TypeError):
        client.set_step_result(step.step_id, {"when": datetime.now()})
    with pytest.raises(ValueError):
        client.set_step_result(step.step_id, float("nan"))
    assert client.get_step_state(step.run_id, step.step_name).status is StepStatus.PENDING


@pytest.fixture
def silent_target() -> Iterator[str]:
    """An address that accepts TCP connections but never answers, so every call waits."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        host, port = sock.getsockname()
        yield f"{host}:{port}"


def test_default_timeout_raises_deadline_exceeded(silent_target: str) -> None:
    with WorkflowStateClient(silent_target, timeout=timedelta(milliseconds=200)) as client:
        with pytest.raises(DeadlineExceeded) as caught:
            client.get_run(str(uuid.uuid4()))
    assert caught.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.reason is None, "the client's own deadline: no server named it"


def test_per_call_timeout_overrides_default(silent_target: str) -> None:
    with WorkflowStateClient(silent_target, timeout=timedelta(seconds=30)) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.get_run(str(uuid.uuid4()), timeout=timedelta(milliseconds=200))
    # Ended by the call's 200 ms, not by the client's 30 s.
    assert time.monotonic() - started < 10


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_server_raises_unavailable() -> None:
    with WorkflowStateClient(f"127.0.0.1:{closed_port()}", retry=False) as client:
        with pytest.raises(Unavailable) as caught:
            client.get_run(str(uuid.uuid4()))
    assert caught.value.status == grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason is None, "no server answered"


def test_tls_client_cannot_talk_to_plaintext_server(server_target: str) -> None:
    with WorkflowStateClient(server_target, tls=True, retry=False) as client:
        with pytest.raises(Unavailable):
            client.get_run(str(uuid.uuid4()))


def test_context_manager_closes_channel(server_target: str) -> None:
    with WorkflowStateClient(server_target) as client:
        assert client.get_run(str(uuid.uuid4())) is None
    with pytest.raises(ValueError, match="closed channel"):
        client.get_run(str(uuid.uuid4()))


def test_close_closes_channel(server_target: str) -> None:
    client = WorkflowStateClient(server_target)
    client.close()
    with pytest.raises(ValueError, match="closed channel"):
        client.create_run(unique_name("closed"))


# --- retries (declared in the channel's service config) ----------------------


def test_retry_policy_names_only_rpcs_safe_to_repeat() -> None:
    """Which RPCs are safe to repeat is written once, on each RPC in the proto (its
    idempotency_level, with the why beside it); the client must follow two rules whatever it says:
    a stream is never replayed (a broken Lease stream is a lost lease; the Worker and watch_run
    resume theirs), and a Batch is repeated only if every call it may carry is."""
    service = pb.SERVICE_DESCRIPTOR
    assert set(RETRYABLE_METHODS) <= set(service.methods_by_name)
    streams = {method.name for method in service.methods if method.client_streaming or method.server_streaming}
    assert streams, "the service has streams"
    assert not streams & set(RETRYABLE_METHODS)
    batchable = {field.message_type.name.removesuffix("Request") for field in pb.BatchOperation.DESCRIPTOR.fields}
    assert ("Batch" in RETRYABLE_METHODS) == batchable.issubset(RETRYABLE_METHODS)


class FlakyServicer(pb_grpc.WorkflowStateServiceServicer):
    """Answers UNAVAILABLE to the first ``failures`` calls of each RPC, and records every call."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.create_run_keys: list[str] = []
        self.insert_calls = 0

    def CreateRun(
        self, request: pb.CreateRunRequest, context: grpc.ServicerContext
    ) -> pb.CreateRunResponse:
        self.create_run_keys.append(request.request_id)
        if len(self.create_run_keys) <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "database down")
        run = pb.Run(
            run_id=str(uuid.uuid4()),
            workflow=request.workflow,
            status=pb.RUN_STATUS_RUNNING,
            input_json=request.input_json,
        )
        run.create_time.GetCurrentTime()
        run.update_time.GetCurrentTime()
        return pb.CreateRunResponse(run=run)

    def InsertStepState(
        self, request: pb.InsertStepStateRequest, context: grpc.ServicerContext
    ) -> pb.InsertStepStateResponse:
        self.insert_calls += 1
        context.abort(grpc.StatusCode.UNAVAILABLE, "database down")


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyServicer, str]]:
    # Only the RPCs the retry tests call are implemented.
    servicer = FlakyServicer(failures=2)  # type: ignore[abstract]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_WorkflowStateServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_create_run_is_retried_with_one_request_id(flaky: tuple[FlakyServicer, str]) -> None:
    servicer, target = flaky
    with WorkflowStateClient(target) as client:
        created = client.create_run(unique_name("retried"), {"n": 1})
    assert created.input == {"n": 1}
    assert len(servicer.create_run_keys) == 3
    assert len(set(servicer.create_run_keys)) == 1
    assert servicer.create_run_keys[0]


def test_insert_step_state_is_not_retried(flaky: tuple[FlakyServicer, str]) -> None:
    servicer, target = flaky
    with WorkflowStateClient(target) as client:
        with pytest.raises(Unavailable):
            client.insert_step_state(str(uuid.uuid4()), "step", "rpc")
    assert servicer.insert_calls == 1


def test_retry_false_does_not_retry(flaky: tuple[FlakyServicer, str]) -> None:
    servicer, target = flaky
    with WorkflowStateClient(target, retry=False) as client:
        with pytest.raises(Unavailable):
            client.create_run(unique_name("no-retry"))
    assert len(servicer.create_run_keys) == 1


def test_resource_exhausted_has_its_own_error_class(client: WorkflowStateClient, unique: str) -> None:
    """A message over the server's size limit is RESOURCE_EXHAUSTED: ResourceExhausted, not the bare base class."""
    with pytest.raises(workflowstate.client.ResourceExhausted) as refused:
        client.create_run(unique, "x" * (8 * 1024 * 1024))
    assert refused.value.status is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.create_run(unique, {"small": True}).workflow == unique  # the channel still works
