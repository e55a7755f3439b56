"""AsyncWorker (the asyncio client's) against the real session server: the Worker's behaviour, awaited.

Both workers share ``WorkerProtocol``; these tests prove the asyncio driving: results, retries,
the bound on running handlers, and the drain on stop. Waits inside PostgreSQL run in a thread,
so the worker keeps running on the event loop meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import grpc.aio
import psycopg
import pytest
from support.remote_mode import wait_for_steps

from workflowstate.client import AsyncWorker, AsyncWorkflowStateClient, NonRetryableError, StepState, StepStatus, StepTask
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SCHEMA = "workflows_test"  # the session server's
WAIT = 30.0


@pytest.fixture
async def client(server_target: str) -> AsyncIterator[AsyncWorkflowStateClient]:
    async with AsyncWorkflowStateClient(server_target) as client:
        yield client


async def scheduled_steps(client: AsyncWorkflowStateClient, run_id: str, rpc: str, count: int, *, retries: int | None = None) -> list[StepState]:
    steps = []
    for i in range(count):
        step = await client.insert_step_state(run_id, f"step-{i}", rpc, {"n": i}, retries=retries, retry_delay=timedelta(0))
        steps.append(await client.set_step_scheduled(step.step_id))
    return steps


async def wait_for(db: psycopg.Connection, run_id: str, status: str, count: int) -> None:
    await asyncio.to_thread(wait_for_steps, db, SCHEMA, run_id, status, count)


async def stop(worker: AsyncWorker, runner: asyncio.Task[None]) -> None:
    assert await worker.stop(timedelta(seconds=WAIT))
    await asyncio.wait_for(runner, WAIT)  # raises what run() raised


async def test_async_handler_results_are_recorded(client: AsyncWorkflowStateClient, db: psycopg.Connection, rpc: str, unique: str) -> None:
    run = await client.create_run(f"wf-{unique}", {})
    steps = await scheduled_steps(client, run.run_id, rpc, 3)

    async def double(task: StepTask) -> dict[str, Any]:
        await asyncio.sleep(0)  # a real coroutine
        return {"doubled": task.data["n"] * 2, "attempt": task.attempt}

    worker = AsyncWorker(client, {rpc: double}, max_in_flight=2)
    runner = asyncio.create_task(worker.run())
    await wait_for(db, run.run_id, "succeeded", 3)
    await stop(worker, runner)

    for i, step in enumerate(steps):
        state = await client.get_step_state(run.run_id, step.step_name)
        assert (state.status, state.result) == (StepStatus.SUCCEEDED, {"doubled": 2 * i, "attempt": 1})


async def test_async_exceptions_are_retried_and_non_retryable_errors_are_not(
    client: AsyncWorkflowStateClient, db: psycopg.Connection, rpc: str, unique: str
) -> None:
    run = await client.create_run(f"wf-{unique}", {})
    retried, refused = await scheduled_steps(client, run.run_id, rpc, 2, retries=1)

    async def fail(task: StepTask) -> None:
        if task.step_name == retried.step_name:
            raise KeyError()
        raise NonRetryableError(f"no at attempt {task.attempt}")

    worker = AsyncWorker(client, {rpc: fail})
    runner = asyncio.create_task(worker.run())
    await wait_for(db, run.run_id, "failed", 2)
    await stop(worker, runner)

    state = await client.get_step_state(run.run_id, retried.step_name)
    assert state.attempt_count == 2 and state.error is not None
    assert (state.error.message, state.error.code) == ("KeyError", "KeyError")
    state = await client.get_step_state(run.run_id, refused.step_name)
    assert state.attempt_count == 1 and state.error is not None
    assert state.error.message == "no at attempt 1"
    history = await client.get_run_history(run.run_id)
    assert sorted((a.step_name, a.attempt, a.status) for a in history) == [
        (retried.step_name, 1, StepStatus.FAILED),
        (retried.step_name, 2, StepStatus.FAILED),
        (refused.step_name, 1, StepStatus.FAILED),
    ]


async def test_async_max_in_flight_is_never_exceeded(client: AsyncWorkflowStateClient, db: psycopg.Connection, rpc: str, unique: str) -> None:
    run = await client.create_run(f"wf-{unique}", {})
    await scheduled_steps(client, run.run_id, rpc, 7)
    now_running, most_running = 0, 0
    all_busy, release = asyncio.Event(), asyncio.Event()

    async def busy(task: StepTask) -> int:
        nonlocal now_running, most_running
        now_running += 1
        most_running = max(most_running, now_running)
        if now_running == 2:
            all_busy.set()
        await asyncio.wait_for(release.wait(), WAIT)
        now_running -= 1
        return task.data["n"]

    worker = AsyncWorker(client, {rpc: busy}, max_in_flight=2)
    runner = asyncio.create_task(worker.run())
    await asyncio.wait_for(all_busy.wait(), WAIT)
    [(handed_out,)] = db.execute(f"SELECT count(*) FROM {SCHEMA}.steps WHERE run_id = %s AND status = 'running'", (run.run_id,))
    assert handed_out == 2
    release.set()
    await wait_for(db, run.run_id, "succeeded", 7)
    await stop(worker, runner)

    assert most_running == 2


async def test_async_stop_drains_running_handlers_and_starts_no_new_task(client: AsyncWorkflowStateClient, rpc: str, unique: str) -> None:
    run = await client.create_run(f"wf-{unique}", {})
    steps = await scheduled_steps(client, run.run_id, rpc, 3)
    started: list[str] = []
    both_started, release = asyncio.Event(), asyncio.Event()

    async def slow(task: StepTask) -> str:
        started.append(task.step_name)
        if len(started) == 2:
            both_started.set()
        await asyncio.wait_for(release.wait(), WAIT)
        return f"done {task.step_name}"

    worker = AsyncWorker(client, {rpc: slow}, max_in_flight=2)
    runner = asyncio.create_task(worker.run())
    await asyncio.wait_for(both_started.wait(), WAIT)
    stopping = asyncio.create_task(worker.stop(timedelta(seconds=WAIT)))
    await asyncio.wait_for(worker.stopping.wait(), WAIT)
    release.set()
    assert await stopping
    await asyncio.wait_for(runner, WAIT)

    assert len(started) == 2
    for step in steps:
        state = await client.get_step_state(run.run_id, step.step_name)
        if step.step_name in started:
            assert (state.status, state.result) == (StepStatus.SUCCEEDED, f"done {step.step_name}")
        else:
            assert (state.status, state.attempt_count) == (StepStatus.SCHEDULED, 1)


async def test_async_stop_after_its_timeout_cancels_the_handlers(client: AsyncWorkflowStateClient, db: psycopg.Connection, rpc: str, unique: str) -> None:
    run = await client.create_run(f"wf-{unique}", {})
    [step] = await scheduled_steps(client, run.run_id, rpc, 1, retries=0)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(task: StepTask) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.set()
            raise

    worker = AsyncWorker(client, {rpc: stuck})
    runner = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), WAIT)
    assert not await worker.stop(timedelta(0))
    await asyncio.wait_for(runner, WAIT)

    assert cancelled.is_set()
    # The abandoned attempt is failed as lost by the server (no retries left: the step fails).
    await wait_for(db, run.run_id, "failed", 1)
    state = await client.get_step_state(run.run_id, step.step_name)
    assert state.error is not None and state.error.code == "WORKER_LOST"


class RequestKinds(grpc.aio.StreamStreamClientInterceptor):
    """Records the kind of each message the worker sends on its streams."""

    def __init__(self) -> None:
        self.sent: list[pb.StreamStepTasksRequest] = []

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        async def recorded() -> AsyncIterator[pb.StreamStepTasksRequest]:
            async for request in request_iterator:
                self.sent.append(request)
                yield request

        return await continuation(client_call_details, recorded())


async def test_async_results_that_finish_together_go_in_one_message(server_target: str, db: psycopg.Connection, rpc: str, unique: str) -> None:
    async with AsyncWorkflowStateClient(server_target) as client:
        run = await client.create_run(f"wf-{unique}", {})
        await scheduled_steps(client, run.run_id, rpc, 6)  # due before the worker subscribes: one claim takes them all
    recorder = RequestKinds()
    async with grpc.aio.insecure_channel(server_target, interceptors=[recorder]) as channel:

        async def echo(task: StepTask) -> int:
            return int(task.data["n"])

        # The worker needs only its client's stub: here one whose channel records what is sent.
        worker = AsyncWorker(SimpleNamespace(_stub=pb_grpc.WorkflowStateServiceStub(channel)), {rpc: echo}, max_in_flight=6)  # type: ignore[arg-type]
        runner = asyncio.create_task(worker.run())
        await wait_for(db, run.run_id, "succeeded", 6)
        await stop(worker, runner)
    reports = [len(r.updates.updates) if r.WhichOneof("kind") == "updates" else 1 for r in recorder.sent if r.WhichOneof("kind") in ("updates", "complete")]
    assert sum(reports) == 6
    assert reports == [6], "six handlers that finish in one loop turn: one message"
