"""A step end to end: from `set_step_scheduled` to the orchestrator seeing the step SUCCEEDED.

The orchestrator (one async client) follows its run with `watch_run`; a Python SDK `AsyncWorker`
with a handler that returns at once runs the steps, on the same server or on a second one sharing
the schema. Steps go one at a time: each is inserted (not timed), then the clock starts, the step
is scheduled, the worker is woken by the NOTIFY of the scheduling, claims it, runs it and completes
it, and the clock stops when the SUCCEEDED event of that step comes out of `watch_run`. The next
step starts only then, so the latency is the whole path with nothing queued behind it; per_s is the
sequential rate, insert included.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from workflowstate.client import AsyncWorker, AsyncWorkflowStateClient, StepStatus, StepTask

from . import payloads
from .loop import MIN_WARMUP_UNITS, OVERRUN_S
from .stats import Tally

# Its own: the dispatch figure's backlog of due payloads.RPC_NAME steps is not this worker's.
RPC_NAME = "rpc-e2e"


async def _trivial(task: StepTask) -> Any:
    return payloads.STEP_RESULT


class _Orchestrator:
    """One run, and the SUCCEEDED events of its steps as they come out of watch_run."""

    def __init__(self, client: AsyncWorkflowStateClient, run_id: str) -> None:
        self._client = client
        self._run_id = run_id
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._count = 0

    async def follow(self) -> None:
        async for event in self._client.watch_run(self._run_id):
            step = event.step
            if step is not None and step.status is StepStatus.SUCCEEDED:
                arrived = time.perf_counter()
                waiter = self._waiting.pop(step.step_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(arrived)

    async def one_step(self) -> float:
        """Insert a step, then time it from scheduled to its SUCCEEDED event received; in ms."""
        self._count += 1
        step = await self._client.insert_step_state(self._run_id, f"step-{self._count}", RPC_NAME, payloads.STEP_DATA)
        arrived: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[step.step_id] = arrived
        began = time.perf_counter()
        await self._client.set_step_scheduled(step.step_id)
        return (await arrived - began) * 1000.0


async def measure(orchestrator_target: str, worker_target: str, *, warmup: float, seconds: float) -> Tally:
    """Sequential steps for ``seconds`` after the warm-up; the latency of each from scheduled to seen."""
    async with (
        AsyncWorkflowStateClient(orchestrator_target) as client,
        AsyncWorkflowStateClient(worker_target) as worker_client,
    ):
        run = await client.create_run(payloads.WORKFLOW, payloads.RUN_INPUT)
        orchestrator = _Orchestrator(client, run.run_id)
        worker = AsyncWorker(worker_client, {RPC_NAME: _trivial}, max_in_flight=1, worker_id="bench-e2e")
        async with asyncio.TaskGroup() as group:
            follower = group.create_task(orchestrator.follow())
            group.create_task(worker.run())
            try:
                async with asyncio.timeout(warmup + seconds + OVERRUN_S):
                    tally = await _sequence(orchestrator, warmup, seconds)
            finally:
                follower.cancel()
                await worker.stop()
    return tally


async def _sequence(orchestrator: _Orchestrator, warmup: float, seconds: float) -> Tally:
    warm_until = time.perf_counter() + warmup
    for done in range(1, 1_000_000):
        await orchestrator.one_step()
        if done >= MIN_WARMUP_UNITS and time.perf_counter() >= warm_until:
            break
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds
    while True:
        latency = await orchestrator.one_step()
        if time.perf_counter() > end:
            return Tally(count=len(latencies), seconds=seconds, latencies_ms=latencies, window=(start, end))
        latencies.append(latency)
