"""Workflow runs survive a restart of the server under their engine: nothing is kept only in memory.

The server goes away while ten runs sleep: every drive loses its run's lease with the lease stream,
and the engine's event stream and stalled-run scan fail until the server is back. Then the scan
finds the runs again, the engine replays them from their history, and every run completes, each
step function having run once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from support.remote_mode import FAST_RECONNECT, free_port, restart
from support.server_process import ServerProcess
from support.workflow_effects import calls, record_call

from workflowstate.client import AsyncWorkflowStateClient, StepStatus
from workflowstate.workflows import WorkflowContext, WorkflowEngine, workflow

RUNS = 10
LEASE_TTL, STALLED_AFTER, SCAN_INTERVAL = timedelta(seconds=2), timedelta(seconds=1), timedelta(seconds=0.5)
# After the restart: the scan (SCAN_INTERVAL) finds each run stalled (STALLED_AFTER) once the lease
# the server lost track of is gone (LEASE_TTL at most), then each run has its nap's rest and one step.
FINISH_WITHIN = (max(LEASE_TTL, STALLED_AFTER) + SCAN_INTERVAL + timedelta(seconds=2 + 10)).total_seconds()


async def test_runs_sleeping_through_a_server_restart_complete_with_each_step_run_once(
    start_server: Callable[..., ServerProcess], tmp_path: Path, unique: str
) -> None:
    port = free_port()
    server = start_server("--listen", f"127.0.0.1:{port}", "--dispatch-poll-interval", "0.2")

    def effect(ctx: WorkflowContext, name: str) -> str:
        record_call(tmp_path, ctx.run_id, name, ctx.attempt)
        return name

    @workflow(f"restart-{unique}")
    async def napping(ctx: WorkflowContext, n: int) -> list[Any]:
        before = await ctx.step("before", effect, ctx, "before")
        await ctx.sleep(timedelta(seconds=2), name="nap")
        return [n, before, await ctx.step("after", effect, ctx, "after")]

    async with AsyncWorkflowStateClient(server.target, channel_options=FAST_RECONNECT) as client:
        engine = WorkflowEngine(client, [napping], lease_ttl=LEASE_TTL, stalled_after=STALLED_AFTER, scan_interval=SCAN_INTERVAL)
        runner = asyncio.create_task(engine.run())
        try:
            run_ids = [await engine.start(napping, n) for n in range(RUNS)]
            async with asyncio.timeout(30):
                for run_id in run_ids:  # every run asleep: its drive waits on the nap, holding the lease
                    async for event in client.watch_run(run_id):
                        if event.step and event.step.step_name == "nap" and event.step.status is StepStatus.PENDING:
                            break
            await asyncio.to_thread(restart, start_server, server, port, server.schema)
            async with asyncio.timeout(FINISH_WITHIN):
                outputs = [await engine.result(run_id) for run_id in run_ids]
        finally:
            engine.stop()
            await runner
    assert outputs == [[n, "before", "after"] for n in range(RUNS)]
    assert calls(tmp_path) == {(run_id, name, 1): 1 for run_id in run_ids for name in ("before", "after")}

