"""A WorkflowEngine process of the workflow tests, so a test can pause (SIGSTOP) or kill (SIGKILL) it.

    python workflow_engine_process.py TARGET SCENARIO SUFFIX EFFECTS_DIR ENGINE_ID [RPC]

SCENARIO picks the workflow it drives (named "<scenario>-<SUFFIX>"):

- ``fence``: one local step "work" whose function records its call, writes EFFECTS_DIR/started,
  and returns only once EFFECTS_DIR/release exists: a test pauses the engine inside it.
- ``crash``: the crash test's five steps: a parallel pair, a step failing its first attempt, a
  remote step for RPC (run by support/workflow_worker_process.py), and a 1 s sleep.

Every step function records its calls (support/workflow_effects.py). The engine logs to
EFFECTS_DIR/ENGINE_ID.log; the process prints "ready" once its engine runs, then "metrics ADDRESS":
where it serves its Prometheus metrics (workflowstate.workflows.prometheus) at /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

# Run as a script, this folder is on sys.path, not tests/: put it there for `support.` imports.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.workflow_effects import record_call  # noqa: E402

from workflowstate.client import AsyncWorkflowStateClient
from workflowstate.workflows import Workflow, WorkflowContext, WorkflowEngine, workflow
from workflowstate.workflows.prometheus import PrometheusEngineMetrics

# Bounds of the tests: a dead engine's runs go on within max(LEASE_TTL, STALLED_AFTER) + SCAN_INTERVAL.
LEASE_TTL = timedelta(seconds=2)
STALLED_AFTER = timedelta(seconds=3)
SCAN_INTERVAL = timedelta(seconds=0.5)
POLL_INTERVAL = timedelta(seconds=2)
RESUMPTION_BOUND = max(LEASE_TTL, STALLED_AFTER) + SCAN_INTERVAL


def fence_workflow(suffix: str, effects: Path) -> Workflow:
    def work(ctx: WorkflowContext) -> str:
        record_call(effects, ctx.run_id, "work", ctx.attempt)
        (effects / "started").write_text(ctx.run_id)
        while not (effects / "release").exists():  # the test's signal, in a file: the engine may be paused meanwhile
            time.sleep(0.02)
        return "done"

    @workflow(f"fence-{suffix}")
    async def fenced(ctx: WorkflowContext, _: Any) -> Any:
        return await ctx.step("work", work, ctx)

    return fenced


def crash_workflow(suffix: str, effects: Path, rpc: str) -> Workflow:
    def local(ctx: WorkflowContext, name: str, n: int) -> int:
        record_call(effects, ctx.run_id, name, ctx.attempt)
        return n * 2

    def flaky(ctx: WorkflowContext, n: int) -> int:
        record_call(effects, ctx.run_id, "flaky", ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("flaky: the first attempt always fails")
        return n + 1

    @workflow(f"crash-{suffix}")
    async def crashing(ctx: WorkflowContext, n: int) -> dict[str, Any]:
        left, right = await asyncio.gather(ctx.step("left", local, ctx, "left", n), ctx.step("right", local, ctx, "right", n + 1))
        plus = await ctx.step("flaky", flaky, ctx, n, retries=2, retry_delay=timedelta(milliseconds=100))
        charge = await ctx.call("charge", rpc, {"amount": n, "fail_first": False}, retries=2, retry_delay=timedelta(0))
        await ctx.sleep(timedelta(seconds=1), name="nap")
        return {"left": left, "right": right, "plus": plus, "charged": charge["charged"]}

    return crashing


async def serve(target: str, chosen: Workflow, engine_id: str) -> None:
    metrics = PrometheusEngineMetrics()
    address = metrics.serve("127.0.0.1:0")
    async with AsyncWorkflowStateClient(target) as client:
        engine = WorkflowEngine(
            client, [chosen], lease_ttl=LEASE_TTL, stalled_after=STALLED_AFTER, scan_interval=SCAN_INTERVAL,
            poll_interval=POLL_INTERVAL, engine_id=engine_id, metrics=metrics,
        )  # fmt: skip
        runner = asyncio.create_task(engine.run())
        print("ready", flush=True)  # first: the tests that need no metrics read this line alone
        print(f"metrics {address}", flush=True)
        await runner


def main() -> None:
    target, scenario, suffix, effects_dir, engine_id = sys.argv[1:6]
    effects = Path(effects_dir)
    logging.basicConfig(
        filename=effects / f"{engine_id}.log", level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    chosen = fence_workflow(suffix, effects) if scenario == "fence" else crash_workflow(suffix, effects, sys.argv[6])
    asyncio.run(serve(target, chosen, engine_id))


if __name__ == "__main__":
    main()
