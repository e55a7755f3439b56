"""The asyncio client against a real server (the ``server_target`` fixture).

The same flows as ``test_client_sync.py``, through ``AsyncWorkflowStateClient``:
both clients share their request building and reply reading, so these tests
mostly prove the awaiting side, the async context manager and the ``grpc.aio``
error mapping.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import grpc.aio
import pytest

from workflowstate.client import (
    AlreadyExists,
    AsyncWorkflowStateClient,
    DeadlineExceeded,
    FailedPrecondition,
    Failure,
    InvalidArgument,
    NotFound,
    Run,
    RunStatus,
    StepState,
    StepStatus,
    WorkflowStateError,
)


def unique_name(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def client(server_target: str) -> AsyncIterator[AsyncWorkflowStateClient]:
    async with AsyncWorkflowStateClient(server_target) as client:
        yield client


@pytest.fixture
async def run(client: AsyncWorkflowStateClient) -> Run:
    return await client.create_run(unique_name("checkout"), {"cart": 42})


@pytest.fixture
async def step(client: AsyncWorkflowStateClient, run: Run) -> StepState:
    return await client.insert_step_state(run.run_id, unique_name("charge"), "chargeCard", [1, 2])


def charge_card() -> None:
    raise ValueError("card declined")


# --- runs --------------------------------------------------------------------


async def test_create_run_then_get_run(client: AsyncWorkflowStateClient) -> None:
    workflow = unique_name("checkout")
    created = await client.create_run(workflow, {"cart": [1, 2]})

    assert created.workflow == workflow
    assert created.status is RunStatus.RUNNING
    assert created.input == {"cart": [1, 2]}
    assert created.output is None
    assert created.error is None
    assert created.create_time.utcoffset() == timedelta(0)
    assert await client.get_run(created.run_id) == created


async def test_get_run_of_missing_run_is_none(client: AsyncWorkflowStateClient) -> None:
    assert await client.get_run(str(uuid.uuid4())) is None


async def test_create_run_with_same_request_id_returns_same_run(
    client: AsyncWorkflowStateClient,
) -> None:
    workflow, key = unique_name("idempotent"), uuid.uuid4().hex
    first = await client.create_run(workflow, "in", request_id=key)
    second = await client.create_run(workflow, "in", request_id=key)
    assert second.run_id == first.run_id


async def test_create_run_without_request_id_creates_two_runs(
    client: AsyncWorkflowStateClient,
) -> None:
    workflow = unique_name("twice")
    first = await client.create_run(workflow)
    second = await client.create_run(workflow)
    assert first.run_id != second.run_id


async def test_update_run_status_with_output_round_trips(
    client: AsyncWorkflowStateClient, run: Run
) -> None:
    output = {"total": 12.5, "items": ["a"], "coupon": None}
    updated = await client.update_run_status(run.run_id, RunStatus.COMPLETED, output=output)
    assert updated.status is RunStatus.COMPLETED
    assert updated.output == output
    assert await client.get_run(run.run_id) == updated


async def test_update_run_status_failed_with_error(
    client: AsyncWorkflowStateClient, run: Run
) -> None:
    try:
        charge_card()
    except ValueError as exc:
        updated = await client.update_run_status(run.run_id, RunStatus.FAILED, error=exc)
    assert updated.status is RunStatus.FAILED
    assert updated.error is not None
    assert updated.error.message == "card declined"
    assert updated.error.code == "ValueError"
    assert "charge_card" in updated.error.stack
    assert updated.output is None


async def test_finished_run_refuses_another_status(
    client: AsyncWorkflowStateClient, run: Run
) -> None:
    await client.update_run_status(run.run_id, RunStatus.CANCELLED)
    with pytest.raises(FailedPrecondition) as caught:
        await client.update_run_status(run.run_id, RunStatus.COMPLETED, output=None)
    assert caught.value.status == grpc.StatusCode.FAILED_PRECONDITION
    assert (caught.value.reason, caught.value.metadata["prior_status"]) == ("FINISHED_RUN", "CANCELLED")


async def test_get_run_history_of_run_without_steps_is_empty(
    client: AsyncWorkflowStateClient, run: Run
) -> None:
    assert await client.get_run_history(run.run_id) == []


# --- steps -------------------------------------------------------------------


async def test_insert_step_state_then_get_step_state(
    client: AsyncWorkflowStateClient, run: Run
) -> None:
    name = unique_name("ship")
    inserted = await client.insert_step_state(
        run.run_id, name, "ship", {"to": "Lyon"}, retries=2, retry_delay=timedelta(minutes=1)
    )
    assert inserted.status is StepStatus.PENDING
    assert inserted.attempt_count == 1
    assert inserted.data == {"to": "Lyon"}
    assert inserted.rpc_name == "ship"
    assert inserted.retries == 2
    assert inserted.retry_delay == timedelta(minutes=1)
    assert inserted.result is None
    assert inserted.error is None
    assert await client.get_step_state(run.run_id, name) == inserted


async def test_insert_step_state_twice_raises_already_exists(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    with pytest.raises(AlreadyExists) as duplicate:
        await client.insert_step_state(step.run_id, step.step_name, "again")
    assert (duplicate.value.reason, duplicate.value.metadata["step_name"]) == ("DUPLICATE_NAME", step.step_name)


async def test_get_step_state_of_missing_step_raises_not_found(
    client: AsyncWorkflowStateClient, run: Run
) -> None:
    with pytest.raises(NotFound) as caught:
        await client.get_step_state(run.run_id, unique_name("missing"))
    assert caught.value.status == grpc.StatusCode.NOT_FOUND
    assert caught.value.reason == "MISSING", caught.value.metadata
    assert caught.value.metadata["run_id"] == run.run_id, caught.value.metadata


async def test_flow_insert_running_result(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    running = await client.set_step_running(step.step_id)
    assert running.status is StepStatus.RUNNING
    assert running.running_time is not None

    done = await client.set_step_result(step.step_id, {"receipt": "r-1"})
    assert done.status is StepStatus.SUCCEEDED
    assert done.result == {"receipt": "r-1"}
    assert done.succeeded_time is not None
    assert await client.get_step_state(step.run_id, step.step_name) == done


async def test_flow_error_retry_running_result(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    await client.set_step_running(step.step_id)
    failure = Failure("timeout talking to bank", code="E_TIMEOUT")
    failed = await client.set_step_error(step.step_id, failure)
    assert failed.status is StepStatus.FAILED
    assert failed.error == failure

    retry = await client.create_retry_attempt(step.step_id, StepStatus.PENDING)
    assert (retry.status, retry.attempt_count, retry.result, retry.error) == (
        StepStatus.PENDING,
        2,
        None,
        None,
    )
    await client.set_step_running(step.step_id)
    await client.set_step_result(step.step_id, "paid")

    latest = await client.get_step_state(step.run_id, step.step_name)
    assert (latest.status, latest.attempt_count, latest.result) == (StepStatus.SUCCEEDED, 2, "paid")

    history = await client.get_run_history(step.run_id)
    assert [(a.attempt, a.status, a.result, a.error) for a in history] == [
        (1, StepStatus.FAILED, None, failure),
        (2, StepStatus.SUCCEEDED, "paid", None),
    ]
    assert {a.step_id for a in history} == {step.step_id}


async def test_create_retry_attempt_can_start_running(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    await client.set_step_error(step.step_id, Failure("flaky"))
    retry = await client.create_retry_attempt(step.step_id, StepStatus.RUNNING)
    assert retry.status is StepStatus.RUNNING
    assert retry.attempt_count == 2


async def test_flow_pending_straight_to_succeeded(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    done = await client.set_step_result(step.step_id, None)
    assert done.status is StepStatus.SUCCEEDED
    assert done.result is None


async def test_flow_pending_straight_to_failed(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    with pytest.raises(ValueError) as caught:
        charge_card()
    failed = await client.set_step_error(step.step_id, caught.value)
    assert failed.status is StepStatus.FAILED
    assert failed.error is not None
    assert failed.error.message == "card declined"
    assert failed.error.code == "ValueError"
    assert "charge_card" in failed.error.stack


async def test_flow_scheduled_to_succeeded(
    client: AsyncWorkflowStateClient, step: StepState
) -> None:
    scheduled = await client.set_step_scheduled(step.step_id)
    assert scheduled.status is StepStatus.SCHEDULED
    assert scheduled.scheduled_time is not None

    done = await client.set_step_result(step.step_id, 7)
    assert done.status is StepStatus.SUCCEEDED
    assert done.result == 7


# --- errors, timeouts, channel -----------------------------------------------


async def test_invalid_uuid_raises_invalid_argument_with_status(
    client: AsyncWorkflowStateClient,
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.set_step_running("not-a-uuid")
    assert caught.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.reason, caught.value.metadata) == ("INVALID_ARGUMENT", {"field": "step_id"})
    assert isinstance(caught.value, WorkflowStateError)
    assert isinstance(caught.value.__cause__, grpc.aio.AioRpcError)


async def test_per_call_timeout_raises_deadline_exceeded() -> None:
    # A socket that accepts TCP connections but never speaks gRPC: the call
    # can only end by a deadline, here the call's 200 ms, not the client's 30 s.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        host, port = sock.getsockname()
        started = time.monotonic()
        async with AsyncWorkflowStateClient(f"{host}:{port}") as client:
            with pytest.raises(DeadlineExceeded) as caught:
                await client.get_run(str(uuid.uuid4()), timeout=timedelta(milliseconds=200))
    assert caught.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.reason is None, "the client's own deadline: no server named it"
    assert time.monotonic() - started < 10


async def test_context_manager_closes_channel(server_target: str) -> None:
    async with AsyncWorkflowStateClient(server_target) as client:
        assert await client.get_run(str(uuid.uuid4())) is None
    with pytest.raises(grpc.aio.UsageError, match="closed"):
        await client.get_run(str(uuid.uuid4()))


async def test_close_closes_channel(server_target: str) -> None:
    client = AsyncWorkflowStateClient(server_target)
    await client.close()
    with pytest.raises(grpc.aio.UsageError, match="closed"):
        await client.create_run(unique_name("closed"))
