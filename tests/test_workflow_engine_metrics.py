"""The workflow engine's metrics and logs name the workflow, run and step.

Metrics: a real `workflowstate engine ... --metrics-listen` process drives runs of a workflow with
a local step that fails once, a remote step run by a Python Worker in another process, and a
sleep; its /metrics, scraped over HTTP, count what happened by workflow, step and outcome (the
expected numbers come from the calls the step functions recorded outside the server). An engine in
this process counts an attempt a dead engine left open as lost. Logs: an
engine in this process logs a failed attempt with the workflow, run and step as fields of the
record (the keys of the server's JSON log lines), and every line about the run names both.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.faults_processes import child
from support.metrics import Samples, scrape
from support.polling import wait_until
from support.workflow_effects import calls, record_call

from workflowstate.client import AsyncWorkflowStateClient, RunStatus, WorkflowStateClient
from workflowstate.workflows import ATTEMPT_LOST, WorkflowContext, WorkflowEngine, workflow
from workflowstate.workflows.prometheus import PrometheusEngineMetrics

WAIT = 30.0
RUNS = 3

# The engine process's workflow: "flaky" fails its first attempt (noting each call in a file),
# "charge" is run by the Worker process (which fails attempt 1 on purpose; the server retries it),
# then a short durable sleep.
FLOWS = """
    from datetime import timedelta
    from pathlib import Path
    from workflowstate.workflows import workflow

    HERE = Path(__file__).parent

    def flaky(ctx, n):
        with (HERE / "flaky-calls.log").open("a") as calls:
            calls.write(f"{ctx.run_id} {ctx.attempt}\\n")
        if ctx.attempt == 1:
            raise ConnectionError("the first attempt fails")
        return n + 1

    @workflow("{name}")
    async def measured(ctx, n):
        plus = await ctx.step("flaky", flaky, ctx, n, retries=1, retry_delay=timedelta(milliseconds=100))
        charge = await ctx.call("charge", "{rpc}", {"amount": n}, retries=1, retry_delay=timedelta(0))
        await ctx.sleep(timedelta(milliseconds=200), name="nap")
        return {"plus": plus, "charged": charge["charged"]}
"""

METRICS_SERVED = re.compile(r"metrics served at http://(\S+)/metrics")


@contextmanager
def engine_process(folder: Path, target: str, name: str, rpc: str) -> Iterator[subprocess.Popen[bytes]]:
    (folder / "engine_metrics_flows.py").write_text(textwrap.dedent(FLOWS).replace("{name}", name).replace("{rpc}", rpc))
    command = [str(Path(sys.executable).parent / "workflowstate"), "engine", "engine_metrics_flows", "--target", target]
    with (folder / "engine.log").open("wb") as log:
        process = subprocess.Popen([*command, "--metrics-listen", "127.0.0.1:0"], cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)


def log_of(folder: Path) -> str:
    return (folder / "engine.log").read_text()


def metrics_address(folder: Path, engine: subprocess.Popen[bytes]) -> str:
    """Where the engine serves /metrics, from its log line; an engine that exited instead fails at once with its log."""
    wait_until(lambda: METRICS_SERVED.search(log_of(folder)) is not None or engine.poll() is not None, "the engine serves its metrics", WAIT)
    found = METRICS_SERVED.search(log_of(folder))
    assert found is not None, log_of(folder)
    return found[1]


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (whatever their other labels)."""
    wanted = set(labels.items())
    return sum(each for (sample, sample_labels), each in samples.items() if sample == name and wanted <= set(sample_labels))


def test_the_engine_commands_metrics_count_runs_steps_remote_calls_and_timers_by_workflow_step_and_outcome(
    server_target: str, unique: str, rpc: str, tmp_path: Path
) -> None:
    name = f"measured-{unique}"
    with (
        child("workflow_worker_process.py", server_target, rpc, str(tmp_path)) as worker,
        engine_process(tmp_path, server_target, name, rpc) as engine,
        WorkflowStateClient(server_target) as client,
    ):
        assert worker.stdout is not None and worker.stdout.readline().strip() == "subscribed"
        address = metrics_address(tmp_path, engine)
        wait_until(lambda: "driving" in log_of(tmp_path), "the engine follows its workflow", WAIT)
        run_ids = [client.create_run(name, n).run_id for n in range(RUNS)]

        def finished(run_id: str) -> bool:
            run = client.get_run(run_id)
            return run is not None and run.status is not RunStatus.RUNNING

        wait_until(lambda: all(finished(run_id) for run_id in run_ids), "every run finishes", WAIT)
        outputs = [client.get_run(run_id) for run_id in run_ids]
        assert [(run.status, run.output) for run in outputs if run is not None] == [
            (RunStatus.COMPLETED, {"plus": n + 1, "charged": n}) for n in range(RUNS)
        ], log_of(tmp_path)
        # A drive counts its end after the run's final write: wait for the count, then read the rest.
        completed = {"workflow": name, "outcome": "completed"}
        wait_until(
            lambda: value(scrape(address), "workflowstate_engine_drives_ended_total", **completed) == len(run_ids),
            "every drive's end is counted", WAIT,
        )  # fmt: skip
        samples = scrape(address)

    flaky_calls = [line.split() for line in (tmp_path / "flaky-calls.log").read_text().splitlines()]
    raised = sum(1 for _, attempt in flaky_calls if attempt == "1")
    returned = len(flaky_calls) - raised
    remote_calls = sum(times for (run_id, step, _), times in calls(tmp_path).items() if run_id in run_ids and step == "charge")
    assert (raised, returned) == (len(run_ids), len(run_ids)), "each run's flaky step failed once, then succeeded"
    assert remote_calls == 2 * len(run_ids), "the worker failed each charge once; the server retried it"

    flaky = {"workflow": name, "step": "flaky"}
    assert value(samples, "workflowstate_engine_step_attempts_total", **flaky, outcome="retried") == raised
    assert value(samples, "workflowstate_engine_step_attempts_total", **flaky, outcome="succeeded") == returned
    assert total(samples, "workflowstate_engine_step_attempts_total", workflow=name) == len(flaky_calls), "no other local attempt"
    assert value(samples, "workflowstate_engine_step_duration_seconds_count", **flaky) == len(flaky_calls)

    charge = {"workflow": name, "step": "charge"}
    assert value(samples, "workflowstate_engine_calls_scheduled_total", **charge) == len(run_ids)
    assert value(samples, "workflowstate_engine_calls_answered_total", **charge, outcome="succeeded") == len(run_ids), (
        "the engine hears one outcome per remote step: the server's retries are its own"
    )

    assert value(samples, "workflowstate_engine_timers_due_total", workflow=name, kind="sleep") == len(run_ids)
    assert value(samples, "workflowstate_engine_timers_due_total", workflow=name, kind="retry_delay") == raised

    assert total(samples, "workflowstate_engine_runs_taken_total", workflow=name) == len(run_ids)
    assert total(samples, "workflowstate_engine_drives_ended_total", workflow=name) == len(run_ids)
    assert value(samples, "workflowstate_engine_runs_driving", workflow=name) == 0
    assert total(samples, "workflowstate_engine_fence_refusals_total") == 0
    # Labels are names from code, never a run's id: one series per workflow and step, however many runs.
    assert not any(run_id in str(labels) for _, labels in samples for run_id in run_ids)


async def test_a_failed_step_attempt_is_logged_with_its_workflow_run_and_step_as_fields(
    server_target: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    def fails_once(ctx: WorkflowContext) -> str:
        if ctx.attempt == 1:
            raise ConnectionError("the first attempt fails")
        return "done"

    @workflow(f"logged-{unique}")
    async def logged(ctx: WorkflowContext, _: Any) -> Any:
        return await ctx.step("fails-once", fails_once, ctx, retries=1)

    caplog.set_level(logging.INFO, logger="workflowstate.workflows")
    async with AsyncWorkflowStateClient(server_target) as client:
        engine = WorkflowEngine(client, [logged])
        runner = asyncio.create_task(engine.run())
        try:
            run_id = await engine.start(logged)
            assert await engine.result(run_id, timeout=timedelta(seconds=WAIT)) == "done"
        finally:
            engine.stop()
            await asyncio.wait_for(runner, WAIT)  # every drive ended: all of its lines are logged

    about_run = [record for record in caplog.records if record.name == "workflowstate.workflows" and run_id in record.getMessage()]
    failed = [record for record in about_run if "failed" in record.getMessage()]
    assert len(failed) == 1, [record.getMessage() for record in about_run]
    message = failed[0].getMessage()
    assert logged.name in message and "fails-once" in message, message
    fields = {key: getattr(failed[0], key, None) for key in ("workflow", "run_id", "step", "attempt")}
    assert fields == {"workflow": logged.name, "run_id": run_id, "step": "fails-once", "attempt": 1}
    assert len(about_run) >= 2, "the failure and the run's completion"
    for record in about_run:
        named = (getattr(record, "workflow", None), getattr(record, "run_id", None))
        assert named == (logged.name, run_id), record.getMessage()


async def test_an_attempt_left_open_by_a_dead_engine_is_counted_lost_by_the_engine_that_records_it(
    server_target: str, unique: str, tmp_path: Path
) -> None:
    def effect(ctx: WorkflowContext) -> int:
        record_call(tmp_path, ctx.run_id, "work", ctx.attempt)
        return ctx.attempt

    @workflow(f"lost-{unique}")
    async def lost(ctx: WorkflowContext, _: Any) -> int:
        attempt: int = await ctx.step("work", effect, ctx)
        return attempt

    metrics = PrometheusEngineMetrics()
    async with AsyncWorkflowStateClient(server_target) as client:
        # What a dead engine leaves: the step's attempt 1 inserted, no outcome.
        run = await client.create_run(lost.name, None)
        await client.insert_step_state(run.run_id, "work", None, None)
        # Short bounds (as tests/test_workflows.py's): the stalled-run scan may be what finds the run.
        quick = {"lease_ttl": timedelta(seconds=2), "stalled_after": timedelta(seconds=0.5), "scan_interval": timedelta(seconds=0.2)}
        engine = WorkflowEngine(client, [lost], metrics=metrics, **quick)
        runner = asyncio.create_task(engine.run())
        try:
            assert await engine.result(run.run_id, timeout=timedelta(seconds=WAIT)) == 2
        finally:
            engine.stop()
            await asyncio.wait_for(runner, WAIT)
        history = await client.get_run_history(run.run_id)

    lost_attempts = [a for a in history if a.error is not None and a.error.code == ATTEMPT_LOST]
    called = sum(times for (run_id, _, _), times in calls(tmp_path).items() if run_id == run.run_id)

    def counted(outcome: str) -> float | None:
        labels = {"workflow": lost.name, "step": "work", "outcome": outcome}
        return metrics.registry.get_sample_value("workflowstate_engine_step_attempts_total", labels)

    assert (counted("lost"), counted("succeeded")) == (len(lost_attempts), called) == (1, 1)
    drives = {"workflow": lost.name, "outcome": "completed"}
    assert metrics.registry.get_sample_value("workflowstate_engine_drives_ended_total", drives) == 1


@pytest.mark.parametrize("listen", ["9464", "127.0.0.1:port", "127.0.0.1:70000"])
def test_a_metrics_listen_address_without_a_port_in_range_is_refused_naming_the_flag_and_the_bound(listen: str) -> None:
    engine = subprocess.run(
        [sys.executable, "-m", "workflowstate.workflows", "any_module", "--metrics-listen", listen],
        capture_output=True, text=True, timeout=WAIT,
    )  # fmt: skip
    assert engine.returncode == 2, engine.stderr
    assert f"argument --metrics-listen: must be HOST:PORT with a port from 0 to 65535, got {listen!r}" in engine.stderr
