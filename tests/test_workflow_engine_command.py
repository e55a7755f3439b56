"""``python -m workflowstate.workflows MODULE`` (and the same as ``workflowstate engine MODULE``) in a real process: it drives a module's workflows, drains on
SIGTERM (the running step function finishes and is recorded, the lease is released), and a second
signal stops it at once, even with a step function that never returns.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.polling import wait_until

from workflowstate.client import RunStatus, StepStatus, WorkflowStateClient

WAIT = 30.0

# The two ways to start an engine: the client's module (its base install has no server command),
# and the server's command beside `serve`.
ENGINE_COMMANDS = {
    "module": [sys.executable, "-m", "workflowstate.workflows"],
    "workflowstate-engine": [str(Path(sys.executable).parent / "workflowstate"), "engine"],
}

# A workflow whose step function announces itself and returns once the test creates a file.
FLOWS = """
    import time
    from datetime import timedelta
    from pathlib import Path
    from workflowstate.workflows import workflow

    HERE = Path(__file__).parent

    def hold(name):
        (HERE / "started").write_text(name)
        while not (HERE / "release").exists():
            time.sleep(0.02)
        return name

    @workflow("{name}")
    async def held(ctx, name):
        done = await ctx.step("hold", hold, name)
        await ctx.sleep(timedelta(hours=1), name="long-nap")
        return done
"""


@contextmanager
def engine_process(folder: Path, target: str, name: str, command: str = "module") -> Iterator[subprocess.Popen[bytes]]:
    (folder / "engine_flows.py").write_text(textwrap.dedent(FLOWS).replace("{name}", name))
    with (folder / "engine.log").open("wb") as log:
        process = subprocess.Popen(
            [*ENGINE_COMMANDS[command], "engine_flows", "--target", target, "--engine-id", "signalled"],
            cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(WAIT)


def log_of(folder: Path) -> str:
    return (folder / "engine.log").read_text()


@pytest.mark.parametrize("command", sorted(ENGINE_COMMANDS))
def test_sigterm_drains_the_engine_the_running_step_is_recorded_and_the_lease_released(
    server_target: str, unique: str, tmp_path: Path, command: str
) -> None:
    name = f"signalled-{unique}"
    with WorkflowStateClient(server_target) as client, engine_process(tmp_path, server_target, name, command) as engine:
        wait_until(lambda: "driving" in log_of(tmp_path), "the engine follows its workflow", WAIT)
        run = client.create_run(name, "kept")
        wait_until((tmp_path / "started").exists, "the step function runs", WAIT)
        engine.send_signal(signal.SIGTERM)
        wait_until(lambda: "SIGTERM received" in log_of(tmp_path), "the engine heard the signal", WAIT)
        (tmp_path / "release").touch()
        assert engine.wait(WAIT) == 0, log_of(tmp_path)
        step = client.get_step_state(run.run_id, "hold")
        assert (step.status, step.result) == (StepStatus.SUCCEEDED, "kept"), "the running function finished and was recorded"
        assert client.get_lease(f"run:{run.run_id}") is None, "the drain released the run's lease"
        current = client.get_run(run.run_id)
        assert current is not None and current.status is RunStatus.RUNNING, "the run goes on with the next engine"
    assert "Traceback" not in log_of(tmp_path)


def test_a_second_signal_stops_the_engine_at_once_even_inside_a_step_that_never_returns(
    server_target: str, unique: str, tmp_path: Path
) -> None:
    name = f"abandoned-{unique}"
    with WorkflowStateClient(server_target) as client, engine_process(tmp_path, server_target, name) as engine:
        wait_until(lambda: "driving" in log_of(tmp_path), "the engine follows its workflow", WAIT)
        run = client.create_run(name, "never")
        wait_until((tmp_path / "started").exists, "the step function runs", WAIT)
        engine.send_signal(signal.SIGTERM)
        wait_until(lambda: "SIGTERM received" in log_of(tmp_path), "the engine heard the signal", WAIT)
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(WAIT) == 0, log_of(tmp_path)
        step = client.get_step_state(run.run_id, "hold")
        assert (step.status, step.result) == (StepStatus.PENDING, None), "the abandoned attempt recorded nothing"
    assert "received again: stopping at once" in log_of(tmp_path)
