"""Python workflows through the engine (workflowstate.workflows): three local steps each, started with
``engine.start`` and awaited with ``engine.result``, in a closed loop, one engine in the bench's process.

Each workflow makes the writes of three step lifecycles plus its run's, under the run's lease:
its ratio to grpc-lifecycle at the same concurrency says what the engine's durability costs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from workflowstate.client import AsyncWorkflowStateClient
from workflowstate.workflows import WorkflowContext, WorkflowEngine, workflow

from . import payloads
from .loop import closed_loop
from .stats import Tally

STEPS = ("reserve", "charge", "ship")


async def _step(data: dict[str, Any]) -> dict[str, Any]:
    return payloads.STEP_RESULT


@workflow("bench-python-workflow")
async def three_steps(ctx: WorkflowContext, input: Any) -> dict[str, Any]:
    for name in STEPS:
        await ctx.step(name, _step, payloads.STEP_DATA)
    return payloads.RUN_OUTPUT


async def measure(target: str, concurrency: int, *, warmup: float, seconds: float) -> Tally:
    """``concurrency`` workflows at a time through one engine and one client."""
    async with AsyncWorkflowStateClient(target) as client:
        engine = WorkflowEngine(client, [three_steps])
        runner = asyncio.create_task(engine.run())

        async def unit() -> None:
            run_id = await engine.start(three_steps, payloads.RUN_INPUT)
            await engine.result(run_id)

        try:
            return await closed_loop([unit] * concurrency, warmup=warmup, seconds=seconds)
        finally:
            engine.stop()
            await runner
