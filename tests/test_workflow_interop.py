"""Python workflows and Pikku's share the Workers: a Python workflow's remote step runs on the TypeScript
Worker of the Pikku example (examples/pikku, `npm run worker`), and the Pikku example's queued step
runs on a Python Worker process. Node and npm are required, as for tests/test_pikku_example.py,
whose fixture prepares the example.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.faults_processes import child
from support.workflow_effects import calls
from test_pikku_example import assert_history_shows_the_retry, example, example_env, run_example

from workflowstate.client import AsyncWorkflowStateClient, StepStatus
from workflowstate.workflows import WorkflowContext, WorkflowEngine, workflow

__all__ = ["example"]  # the fixture, used by name below

WAIT = 60.0
CHARGE_CARD = "chargeCard"  # the Pikku example's queued function


@pytest.fixture
async def client(server_target: str) -> AsyncIterator[AsyncWorkflowStateClient]:
    async with AsyncWorkflowStateClient(server_target) as client:
        yield client


async def test_a_python_workflows_remote_step_runs_on_the_typescript_worker(
    example: Path, client: AsyncWorkflowStateClient, server_target: str, unique: str
) -> None:
    @workflow(f"interop-{unique}")
    async def pays(ctx: WorkflowContext, amount: int) -> Any:
        data = {"orderId": ctx.run_id, "amount": amount}
        return await ctx.call("charge card", CHARGE_CARD, data, retries=2, retry_delay=timedelta(0))

    worker = subprocess.Popen(
        ["npm", "run", "--silent", "worker"], cwd=example, env=example_env(server_target),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    engine = WorkflowEngine(client, [pays])
    runner = asyncio.create_task(engine.run())
    try:
        run_id = await engine.start(pays, 25)
        output = await engine.result(run_id, timeout=timedelta(seconds=WAIT))
    finally:
        engine.stop()
        await runner
        os.killpg(worker.pid, signal.SIGTERM)  # the Worker drains and exits
        worker_output, _ = worker.communicate(timeout=WAIT)
    assert output == {"charged": 25, "attempt": 2}, "the TypeScript handler failed attempt 1; the server retried it"
    history = await client.get_run_history(run_id)
    assert [(a.step_name, a.attempt, a.status) for a in history] == [
        ("charge card", 1, StepStatus.FAILED),
        ("charge card", 2, StepStatus.SUCCEEDED),
    ]
    assert history[0].error is not None and history[0].error.message == "card gateway timed out"
    assert 'runs "charge card" attempt 2' in worker_output


def test_a_pikku_workflows_queued_step_runs_on_a_python_worker(
    example: Path, server_target: str, tmp_path: Path
) -> None:
    with child("workflow_worker_process.py", server_target, CHARGE_CARD, str(tmp_path), "card gateway timed out") as worker:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "subscribed"
        run_id, output = run_example(example, "queued", server_target, "--external-worker")
    assert 'runs "charge card"' not in output, "the Pikku process ran no step itself"
    assert_history_shows_the_retry(server_target, run_id, queued=True)
    assert calls(tmp_path) == {(run_id, "charge card", 1): 1, (run_id, "charge card", 2): 1}, "both attempts ran on the Python Worker"
