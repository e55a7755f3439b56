"""Leases through the client, sync and async, against real servers on a real PostgreSQL.

Most tests use the session server and keys made unique with the ``unique``
fixture. Tests of a lost lease start a server of their own (``start_server``)
and make it go away: stopped (it says SERVER_SHUTDOWN), killed (the stream
breaks) or frozen with SIGSTOP (nothing answers, so the client's own deadline
passes). Nothing waits by sleeping: tests wait on the lease's ``lost`` event,
on a blocking acquire, or on the next message of a stream.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import queue
import re
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from support.server_process import ServerProcess

from workflowstate.client import (
    AsyncLease,
    AsyncWorkflowStateClient,
    DeadlineExceeded,
    FailedPrecondition,
    Failure,
    InvalidArgument,
    Lease,
    LeaseInfo,
    LeaseLostReason,
    Run,
    RunStatus,
    StepState,
    StepStatus,
    WorkflowStateClient,
)
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SHORT_TTL = timedelta(seconds=1)
# Generous: these waits end with an event long before, unless something is broken.
EVENT_TIMEOUT = 30.0


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


@pytest.fixture
async def async_client(server_target: str) -> AsyncIterator[AsyncWorkflowStateClient]:
    async with AsyncWorkflowStateClient(server_target) as client:
        yield client


@pytest.fixture
def key(unique: str) -> str:
    return f"test:{unique}"


@pytest.fixture
def run(client: WorkflowStateClient, unique: str) -> Run:
    return client.create_run(f"leased-{unique}", {"n": 1})


class RawHolder:
    """A lease held over the generated stub and never kept alive: the server expires it."""

    def __init__(self, target: str, key: str, ttl: timedelta) -> None:
        self._channel = grpc.insecure_channel(target)
        self._requests: queue.Queue[pb.LeaseRequest | None] = queue.Queue()
        self._responses = pb_grpc.WorkflowStateServiceStub(self._channel).Lease(
            iter(self._requests.get, None)
        )
        duration = Duration()
        duration.FromTimedelta(ttl)
        self._requests.put(
            pb.LeaseRequest(acquire=pb.LeaseAcquire(key=key, ttl=duration, holder="raw"))
        )
        self.granted = self.next_response().granted

    def next_response(self) -> pb.LeaseResponse:
        return next(self._responses)

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()
        self._channel.close()


@pytest.fixture
def raw_holder(server_target: str) -> Iterator[Callable[[str, timedelta], RawHolder]]:
    holders: list[RawHolder] = []

    def hold(key: str, ttl: timedelta) -> RawHolder:
        holders.append(RawHolder(server_target, key, ttl))
        return holders[-1]

    yield hold
    for holder in holders:
        holder.close()


def step_of(client: WorkflowStateClient, run: Run, name: str) -> StepState:
    return client.insert_step_state(run.run_id, name, "work", {"in": name})


# --- sync: acquire, release, get_lease ---------------------------------------


def test_lease_shows_its_holder_until_released(client: WorkflowStateClient, key: str) -> None:
    with client.lease(key, ttl=timedelta(seconds=30), holder="worker-7") as lease:
        assert isinstance(lease, Lease)
        assert lease.key == key
        assert lease.fencing_token > 0
        assert lease.expire_time.utcoffset() == timedelta(0)
        assert not lease.lost.is_set()
        assert lease.lost_reason is None

        info = client.get_lease(key)
        assert isinstance(info, LeaseInfo)
        assert (info.key, info.holder, info.fencing_token) == (key, "worker-7", lease.fencing_token)
        assert info.acquire_time <= info.expire_time
        assert info.expire_time.utcoffset() == timedelta(0)

    assert client.get_lease(key) is None
    assert not lease.lost.is_set()


def test_get_lease_of_a_free_key_is_none(client: WorkflowStateClient, key: str) -> None:
    assert client.get_lease(key) is None


def test_default_holder_is_host_and_pid(client: WorkflowStateClient, key: str) -> None:
    with client.lease(key) as lease:
        info = client.get_lease(key)
    assert info is not None
    assert info.holder == lease.holder == f"{socket.gethostname()}:{os.getpid()}"


def test_fencing_tokens_strictly_increase_across_cycles(
    client: WorkflowStateClient, key: str
) -> None:
    tokens = []
    for _ in range(3):
        with client.lease(key) as lease:
            tokens.append(lease.fencing_token)
    assert tokens == sorted(set(tokens))


def test_lease_is_released_when_the_block_raises(client: WorkflowStateClient, key: str) -> None:
    with pytest.raises(RuntimeError, match="step failed"):
        with client.lease(key) as lease:
            raise RuntimeError("step failed")
    assert client.get_lease(key) is None
    assert not lease.lost.is_set()


def test_run_lock_and_step_lock_use_the_conventional_keys(
    client: WorkflowStateClient, run: Run
) -> None:
    with client.run_lock(run.run_id) as lease:
        assert lease.key == f"run:{run.run_id}"
        assert client.get_lease(f"run:{run.run_id}") is not None
    with client.step_lock(run.run_id, "charge") as lease:
        assert lease.key == f"step:{run.run_id}:charge"
        assert client.get_lease(f"step:{run.run_id}:charge") is not None


def test_lease_outlives_its_ttl_while_kept_alive(client: WorkflowStateClient, key: str) -> None:
    with client.lease(key, ttl=SHORT_TTL) as lease:
        granted_expiry = lease.expire_time
        # Three ttls without a loss: only keepalives can have kept it.
        assert not lease.wait_lost(timeout=3 * SHORT_TTL.total_seconds())
        assert lease.expire_time > granted_expiry
        info = client.get_lease(key)
        assert info is not None
        assert info.fencing_token == lease.fencing_token


def test_a_waiting_acquire_gets_the_key_when_the_holder_leaves(
    client: WorkflowStateClient, key: str
) -> None:
    def wait_for_key() -> int:
        with client.lease(key, wait_timeout=timedelta(seconds=EVENT_TIMEOUT)) as lease:
            return lease.fencing_token

    with ThreadPoolExecutor(max_workers=1) as pool:
        with client.lease(key) as first:
            waiter = pool.submit(wait_for_key)
        assert waiter.result(timeout=EVENT_TIMEOUT) > first.fencing_token


# --- sync: acquire errors -------------------------------------------------


def test_wait_timeout_on_a_held_key_raises_deadline_exceeded(
    client: WorkflowStateClient, key: str
) -> None:
    with client.lease(key) as holder:
        with pytest.raises(DeadlineExceeded) as caught:
            with client.lease(key, wait_timeout=timedelta(milliseconds=200)):
                pytest.fail("acquired a held key")
        assert caught.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
        assert caught.value.reason == "DEADLINE_EXCEEDED", "the server's wait_timeout, not the client's clock"
        assert isinstance(caught.value.__cause__, grpc.RpcError)
        info = client.get_lease(key)
        assert info is not None and info.fencing_token == holder.fencing_token


def test_zero_wait_timeout_tries_once(client: WorkflowStateClient, key: str) -> None:
    with client.lease(key):
        with pytest.raises(DeadlineExceeded) as tried_once:
            with client.lease(key, wait_timeout=timedelta(0)):
                pytest.fail("acquired a held key")
        assert tried_once.value.reason == "DEADLINE_EXCEEDED"
    with client.lease(key, wait_timeout=timedelta(0)) as lease:
        assert lease.fencing_token > 0


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(seconds=-1), timedelta(hours=1)])
def test_bad_ttl_raises_invalid_argument(
    client: WorkflowStateClient, key: str, ttl: timedelta
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        with client.lease(key, ttl=ttl):
            pytest.fail("acquired with a bad ttl")
    assert caught.value.status == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.reason, caught.value.metadata["field"]) == ("INVALID_ARGUMENT", "acquire.ttl"), caught.value
    assert client.get_lease(key) is None


def test_empty_key_raises_invalid_argument(client: WorkflowStateClient) -> None:
    with pytest.raises(InvalidArgument) as empty_key:
        with client.lease(""):
            pytest.fail("acquired an empty key")
    assert (empty_key.value.reason, empty_key.value.metadata.get("field")) == ("INVALID_ARGUMENT", "acquire.key")


# --- sync: fenced writes -----------------------------------------------------


@pytest.mark.parametrize("client_class", [WorkflowStateClient, AsyncWorkflowStateClient])
def test_every_fenceable_rpc_has_a_method_taking_a_fence(client_class: type) -> None:
    # lease.client fences exactly the methods that take fencing_token; the
    # contract says which RPCs can be fenced. The two must agree.
    service = pb.SERVICE_DESCRIPTOR
    fenceable = {
        re.sub(r"(?<!^)(?=[A-Z])", "_", method.name).lower()
        for method in service.methods
        if "fencing_token" in method.input_type.fields_by_name
    }
    taking_a_fence = {
        name
        for name, method in inspect.getmembers(client_class, inspect.isfunction)
        if {"fencing_token", "lease_key"} <= set(inspect.signature(method).parameters)
    }
    assert taking_a_fence == fenceable
    assert len(fenceable) == 12  # 7, and the engine-state writes


def test_lease_client_writes_succeed_while_held(client: WorkflowStateClient, run: Run) -> None:
    with client.run_lock(run.run_id) as lease:
        fenced = lease.client
        step = fenced.insert_step_state(run.run_id, "charge", "chargeCard", {"amount": 10})
        fenced.set_step_scheduled(step.step_id)
        fenced.set_step_running(step.step_id)
        fenced.set_step_error(step.step_id, Failure("declined"))
        fenced.create_retry_attempt(step.step_id, StepStatus.RUNNING)
        fenced.set_step_result(step.step_id, {"paid": True})
        done = fenced.update_run_status(run.run_id, RunStatus.COMPLETED, output="ok")
        # Reads pass through the view unchanged.
        assert fenced.get_run(run.run_id) == done
    assert done.status is RunStatus.COMPLETED
    assert client.get_step_state(run.run_id, "charge").result == {"paid": True}


def test_step_lock_client_fences_with_the_step_key(client: WorkflowStateClient, run: Run) -> None:
    step = step_of(client, run, "ship")
    with client.step_lock(run.run_id, "ship") as lease:
        assert lease.client.set_step_result(step.step_id, "shipped").status is StepStatus.SUCCEEDED


def test_explicit_fencing_token_is_accepted_while_current(
    client: WorkflowStateClient, run: Run
) -> None:
    step = step_of(client, run, "direct")
    with client.lease(f"custom:{run.run_id}") as lease:
        done = client.set_step_result(
            step.step_id, 1, fencing_token=lease.fencing_token, lease_key=lease.key
        )
    assert done.status is StepStatus.SUCCEEDED


def test_stale_lease_client_is_refused_on_every_write(
    client: WorkflowStateClient, run: Run
) -> None:
    pending = step_of(client, run, "pending")
    failed = step_of(client, run, "failed")
    client.set_step_error(failed.step_id, Failure("first attempt"))
    with client.run_lock(run.run_id) as first:
        stale = first.client

    with client.run_lock(run.run_id) as second:
        # Each of these would succeed without a token: only the fence refuses them.
        writes: list[Callable[[], object]] = [
            lambda: stale.update_run_status(run.run_id, RunStatus.COMPLETED, output=1),
            lambda: stale.insert_step_state(run.run_id, "late", "work"),
            lambda: stale.set_step_scheduled(pending.step_id),
            lambda: stale.set_step_running(pending.step_id),
            lambda: stale.set_step_result(pending.step_id, "late"),
            lambda: stale.set_step_error(pending.step_id, Failure("late")),
            lambda: stale.create_retry_attempt(failed.step_id),
            lambda: stale.set_step_suspended(pending.step_id),
            lambda: stale.set_step_child_run(pending.step_id, run.run_id),
            lambda: stale.set_step_branch(pending.step_id, "late"),
            lambda: stale.claim_step(run.run_id, "pending", pending.rpc_name),
            lambda: stale.update_run_state(run.run_id, "late", 1),
        ]
        for write in writes:
            with pytest.raises(FailedPrecondition) as caught:
                write()
            assert caught.value.reason == "STALE_FENCE"
            assert caught.value.metadata["fence_token"] == str(first.fencing_token)
            assert caught.value.metadata["current_token"] == str(second.fencing_token)
        # The current holder's view is not refused.
        second.client.set_step_running(pending.step_id)

    current = client.get_run(run.run_id)
    assert current is not None
    assert (current.status, current.output) == (RunStatus.RUNNING, None)
    assert client.get_step_state(run.run_id, "pending").status is StepStatus.RUNNING
    assert client.get_step_state(run.run_id, "failed").attempt_count == 1
    assert {a.step_name for a in client.get_run_history(run.run_id)} == {"pending", "failed"}
    assert client.get_run_state(run.run_id) == {}
    assert (client.get_step_state(run.run_id, "pending").branch_key, client.get_step_state(run.run_id, "pending").child_run_id) == (None, None)


def test_explicit_arguments_win_over_the_lease_client(
    client: WorkflowStateClient, run: Run
) -> None:
    step = step_of(client, run, "override")
    with client.run_lock(run.run_id) as first:
        old_token = first.fencing_token
    with client.run_lock(run.run_id) as second:
        with pytest.raises(FailedPrecondition) as stale_refused:
            second.client.set_step_result(step.step_id, 1, fencing_token=old_token)
        assert (stale_refused.value.reason, stale_refused.value.metadata["fence_token"]) == ("STALE_FENCE", str(old_token))
    assert client.get_step_state(run.run_id, "override").status is StepStatus.PENDING


def test_taken_over_holder_cannot_write(
    client: WorkflowStateClient,
    run: Run,
    raw_holder: Callable[[str, timedelta], RawHolder],
) -> None:
    step = step_of(client, run, "contested")
    key = f"run:{run.run_id}"
    silent = raw_holder(key, SHORT_TTL)  # granted, never kept alive

    # Blocks until the server expired the silent holder and granted us the key.
    with client.run_lock(run.run_id, wait_timeout=timedelta(seconds=EVENT_TIMEOUT)) as lease:
        assert silent.next_response().WhichOneof("kind") == "lost"
        assert lease.fencing_token > silent.granted.fencing_token
        with pytest.raises(FailedPrecondition) as stale_refused:
            client.set_step_result(
                step.step_id, "stale", fencing_token=silent.granted.fencing_token
            )
        assert (stale_refused.value.reason, stale_refused.value.metadata["fence_token"]) == ("STALE_FENCE", str(silent.granted.fencing_token))
        assert client.get_step_state(run.run_id, "contested").status is StepStatus.PENDING
        assert lease.client.set_step_result(step.step_id, "fresh").result == "fresh"


def test_lease_key_without_fencing_token_fails_before_sending(
    client: WorkflowStateClient, run: Run
) -> None:
    step = step_of(client, run, "keyonly")
    with pytest.raises(ValueError, match="fencing_token"):
        client.set_step_result(step.step_id, 1, lease_key="run:elsewhere")
    assert client.get_step_state(run.run_id, "keyonly").status is StepStatus.PENDING


# --- sync: losing a lease ----------------------------------------------------


def test_lost_is_set_when_the_server_shuts_down(
    start_server: Callable[..., ServerProcess], key: str
) -> None:
    server = start_server()
    with WorkflowStateClient(server.target) as client:
        with client.lease(key) as lease:
            assert server.stop() == 0
            assert lease.wait_lost(timeout=EVENT_TIMEOUT)
            assert lease.lost.is_set()
            assert lease.lost_reason is LeaseLostReason.SERVER_SHUTDOWN
            assert str(lease.lost_reason) == "server_shutdown"  # a plain str too


def test_lost_is_set_when_the_stream_breaks(
    start_server: Callable[..., ServerProcess], key: str
) -> None:
    server = start_server()
    with WorkflowStateClient(server.target) as client:
        with client.lease(key) as lease:
            server.kill()
            assert lease.wait_lost(timeout=EVENT_TIMEOUT)
            assert lease.lost_reason is LeaseLostReason.STREAM_BROKEN


def test_lost_is_set_when_the_client_hears_nothing_and_exit_does_not_hang(
    start_server: Callable[..., ServerProcess], key: str
) -> None:
    server = start_server()
    assert server.process is not None
    with WorkflowStateClient(server.target) as client:
        with client.lease(key, ttl=SHORT_TTL) as lease:
            server.process.send_signal(signal.SIGSTOP)  # alive, but answers nothing
            try:
                assert lease.wait_lost(timeout=EVENT_TIMEOUT)
                assert lease.lost_reason is LeaseLostReason.DEADLINE_PASSED
            except BaseException:
                server.process.send_signal(signal.SIGCONT)
                raise
        # Still frozen: leaving gave up waiting for `released` and ended the stream.
        server.process.send_signal(signal.SIGCONT)


def test_wait_lost_times_out_while_held(client: WorkflowStateClient, key: str) -> None:
    with client.lease(key) as lease:
        assert lease.wait_lost(timeout=0.05) is False


# --- async -------------------------------------------------------------------


async def test_async_lease_shows_its_holder_until_released(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    async with async_client.lease(key, holder="async-worker") as lease:
        assert isinstance(lease, AsyncLease)
        assert lease.key == key
        assert not lease.lost.is_set()
        info = await async_client.get_lease(key)
        assert info is not None
        assert (info.holder, info.fencing_token) == ("async-worker", lease.fencing_token)
    assert await async_client.get_lease(key) is None


async def test_async_fencing_tokens_strictly_increase(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    tokens = []
    for _ in range(3):
        async with async_client.lease(key) as lease:
            tokens.append(lease.fencing_token)
    assert tokens == sorted(set(tokens))


async def test_async_lease_is_released_when_the_block_raises(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    with pytest.raises(RuntimeError):
        async with async_client.lease(key):
            raise RuntimeError("step failed")
    assert await async_client.get_lease(key) is None


async def test_async_run_lock_and_step_lock_keys(
    async_client: AsyncWorkflowStateClient, run: Run
) -> None:
    async with async_client.run_lock(run.run_id) as lease:
        assert lease.key == f"run:{run.run_id}"
    async with async_client.step_lock(run.run_id, "charge") as lease:
        assert lease.key == f"step:{run.run_id}:charge"


async def test_async_lease_outlives_its_ttl_while_kept_alive(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    async with async_client.lease(key, ttl=SHORT_TTL) as lease:
        granted_expiry = lease.expire_time
        assert not await lease.wait_lost(timeout=3 * SHORT_TTL.total_seconds())
        assert lease.expire_time > granted_expiry
        info = await async_client.get_lease(key)
        assert info is not None and info.fencing_token == lease.fencing_token


async def test_async_wait_timeout_and_try_once_raise_deadline_exceeded(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    async with async_client.lease(key):
        for wait in (timedelta(milliseconds=200), timedelta(0)):
            with pytest.raises(DeadlineExceeded) as caught:
                async with async_client.lease(key, wait_timeout=wait):
                    pytest.fail("acquired a held key")
            assert isinstance(caught.value.__cause__, grpc.aio.AioRpcError)


async def test_async_bad_ttl_raises_invalid_argument(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    with pytest.raises(InvalidArgument):
        async with async_client.lease(key, ttl=timedelta(0)):
            pytest.fail("acquired with a bad ttl")


async def test_async_cancelled_acquire_stops_waiting(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    entered = asyncio.Event()

    async def wait_for_key() -> None:
        async with async_client.lease(key):
            entered.set()

    async with async_client.lease(key):
        waiter = asyncio.create_task(wait_for_key())
        # Let the waiter's acquire reach the server before it is cancelled.
        await asyncio.wait([waiter], timeout=0.5)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert not entered.is_set()
    # The server learns of the cancel when the stream's end reaches it, a moment after the client's
    # CancelledError: until then the waiter may even be granted the key (then freed at once). So the
    # next acquire waits, but far less than the waiter's TTL (10 s, the default), which a waiter
    # left behind would hold the key for.
    async with async_client.lease(key, ttl=timedelta(minutes=1), wait_timeout=timedelta(seconds=3)) as lease:
        assert lease.fencing_token > 0


async def test_async_lease_client_fences_writes(
    async_client: AsyncWorkflowStateClient, run: Run
) -> None:
    step = await async_client.insert_step_state(run.run_id, "async-step", "work")
    async with async_client.run_lock(run.run_id) as first:
        stale = first.client
        await first.client.set_step_running(step.step_id)
    async with async_client.run_lock(run.run_id) as second:
        with pytest.raises(FailedPrecondition) as stale_refused:
            await stale.set_step_result(step.step_id, "stale")
        assert stale_refused.value.reason == "STALE_FENCE"
        done = await second.client.set_step_result(step.step_id, "fresh")
    assert done.result == "fresh"
    assert (await stale.get_step_state(run.run_id, "async-step")).result == "fresh"


async def test_async_lost_is_set_when_the_server_shuts_down(
    start_server: Callable[..., ServerProcess], key: str
) -> None:
    server = start_server()
    async with AsyncWorkflowStateClient(server.target) as client:
        async with client.lease(key) as lease:
            # stop() blocks until the process exits; the event loop must keep
            # running meanwhile, to read the LeaseLost.
            assert await asyncio.to_thread(server.stop) == 0
            assert await lease.wait_lost(timeout=EVENT_TIMEOUT)
            assert lease.lost_reason is LeaseLostReason.SERVER_SHUTDOWN


async def test_async_lost_is_set_when_the_client_hears_nothing(
    start_server: Callable[..., ServerProcess], key: str
) -> None:
    server = start_server()
    assert server.process is not None
    async with AsyncWorkflowStateClient(server.target) as client:
        async with client.lease(key, ttl=SHORT_TTL) as lease:
            server.process.send_signal(signal.SIGSTOP)
            try:
                assert await lease.wait_lost(timeout=EVENT_TIMEOUT)
                assert lease.lost_reason is LeaseLostReason.DEADLINE_PASSED
            finally:
                server.process.send_signal(signal.SIGCONT)


async def test_async_wait_lost_times_out_while_held(
    async_client: AsyncWorkflowStateClient, key: str
) -> None:
    async with async_client.lease(key) as lease:
        assert await lease.wait_lost(timeout=0.05) is False
