"""The Pikku example (examples/pikku) runs a real Pikku workflow on the session server, as a user
runs it: `npm run inline`, `npm run queued`, `npm run worker` beside `npm run queued --
--external-worker`, with the server's address in WORKFLOWSTATE_TARGET.

The example installs the TypeScript packages of clients/typescript (@workflowstate/pikku and
@workflowstate/client) from their folders, as copies, so those are installed and built first.
Its own tests (examples/pikku/test) run through the adapter against the session server too. Node and npm are required: without
them the tests fail with a message saying so, they never skip.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from workflowstate.client import RunStatus, StepStatus, WorkflowStateClient

REPO = Path(__file__).resolve().parent.parent
TYPESCRIPT = REPO / "clients" / "typescript"
EXAMPLE = REPO / "examples" / "pikku"
RUN_LINE = re.compile(r"^run (?P<run_id>[0-9a-f-]{36}) (?P<status>\w+) ", re.MULTILINE)


def npm(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run npm in cwd; fail the test with npm's output when it exits non-zero or outlasts timeout.

    npm runs in its own process group, so a timeout kills the node processes it started too."""
    command = f"npm {' '.join(args)} in {cwd}"
    process = subprocess.Popen(
        ["npm", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{command} still ran after {timeout}s:\n{stdout}\n{stderr}")
    assert process.returncode == 0, f"{command} exited {process.returncode}:\n{stdout}\n{stderr}"
    return stdout


def install(folder: Path) -> None:
    """`npm ci` in folder when its node_modules is missing or older than its lockfile."""
    modules, lock = folder / "node_modules", folder / "package-lock.json"
    if not modules.exists() or modules.stat().st_mtime < lock.stat().st_mtime:
        npm("ci", "--no-audit", "--no-fund", cwd=folder)


@pytest.fixture(scope="module")
def example() -> Path:
    """The example folder, ready to run: the TypeScript packages built, its own packages installed."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the Pikku example needs Node.js 20+ and npm: {', '.join(missing)} not found on PATH")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.fail(f"the Pikku example needs Node.js 20+, found {version}")
    install(TYPESCRIPT)
    # Only the two packages the example links to (their own tests build the rest).
    npm("exec", "--", "tsc", "-b", "packages/client", "packages/pikku", cwd=TYPESCRIPT)
    # Always: the example installs copies of the packages (install-links), which a rebuild does not update.
    npm("ci", "--no-audit", "--no-fund", cwd=EXAMPLE)
    npm("run", "typecheck", cwd=EXAMPLE)  # the example is documentation: it must compile against the packages
    return EXAMPLE


def example_env(server_target: str) -> dict[str, str]:
    env = {**os.environ, "WORKFLOWSTATE_TARGET": server_target}
    env.pop("WORKFLOWSTATE_TOKEN", None)
    return env


def run_example(example: Path, script: str, server_target: str, *args: str) -> tuple[str, str]:
    """Run one of the example's npm scripts against the server; return the run id and its output."""
    output = npm(
        "run", "--silent", script, *(["--", *args] if args else []), cwd=example, env=example_env(server_target), timeout=120
    )
    found = RUN_LINE.search(output)
    assert found, f"no 'run <id> <status>' line in the example's output:\n{output}"
    assert found["status"] == "completed", output
    return found["run_id"], output


def assert_history_shows_the_retry(server_target: str, run_id: str, *, queued: bool) -> None:
    """What the server stored: the run completed; the second step failed once, then succeeded.

    Its events tell the two modes apart: queued, each attempt of the second step went through
    SCHEDULED (the first by Pikku's dispatch, the second by the server's retry) to the worker;
    inline, Pikku ran both attempts itself, from PENDING."""
    with WorkflowStateClient(server_target) as client:
        run = client.get_run(run_id)
        assert run is not None and run.workflow == "orderWorkflow"
        assert run.status is RunStatus.COMPLETED
        assert run.output["reserved"] == 3 and run.output["charged"] == 25
        history = client.get_run_history(run_id)
        assert [(a.step_name, a.attempt, a.status) for a in history] == [
            ("reserve stock", 1, StepStatus.SUCCEEDED),
            ("charge card", 1, StepStatus.FAILED),
            ("charge card", 2, StepStatus.SUCCEEDED),
        ]
        assert history[1].error is not None and history[1].error.message == "card gateway timed out"
        assert history[2].result == {"charged": 25, "attempt": 2}
        charge_card = [
            (event.step.attempt, event.step.status.value)
            for event in client.watch_run(run_id)
            if event.step is not None and event.step.step_name == "charge card"
        ]
    if queued:
        expected = [(1, "pending"), (1, "scheduled"), (1, "running"), (1, "failed"), (2, "scheduled"), (2, "running")]
    else:
        expected = [(1, "pending"), (1, "running"), (1, "failed"), (2, "pending"), (2, "running")]
    assert charge_card == [*expected, (2, "succeeded")]


def printed_attempts(output: str) -> list[tuple[str, int, str]]:
    """The attempts the example printed: (step, attempt, status), in the order printed."""
    return [(m[1], int(m[2]), m[3]) for m in re.finditer(r'^  step "([^"]+)" attempt (\d+) (\w+) ', output, re.MULTILINE)]


PRINTED = [("reserve stock", 1, "succeeded"), ("charge card", 1, "failed"), ("charge card", 2, "succeeded")]


def test_inline_run_completes_after_retrying_the_failed_step(example: Path, server_target: str) -> None:
    run_id, output = run_example(example, "inline", server_target)
    assert printed_attempts(output) == PRINTED, output
    assert 'error="card gateway timed out"' in output
    assert_history_shows_the_retry(server_target, run_id, queued=False)


def attempts_run_by_workers(output: str) -> list[str]:
    """The attempts of "charge card" the workflowstate Worker printed it ran, in order."""
    return re.findall(r'^worker \S+ runs "charge card" attempt (\d+)$', output, re.MULTILINE)


def test_queued_step_runs_on_a_worker_and_is_retried_by_the_server(example: Path, server_target: str) -> None:
    run_id, output = run_example(example, "queued", server_target)
    assert printed_attempts(output) == PRINTED, output
    assert attempts_run_by_workers(output) == ["1", "2"], output
    assert_history_shows_the_retry(server_target, run_id, queued=True)


def test_queued_step_runs_on_the_worker_of_another_process(example: Path, server_target: str) -> None:
    # No need to wait for the worker to subscribe: a scheduled step waits for one on the server.
    worker = subprocess.Popen(
        ["npm", "run", "--silent", "worker"],
        cwd=example,
        env=example_env(server_target),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        run_id, output = run_example(example, "queued", server_target, "--external-worker")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)  # the Worker drains and exits
        try:
            worker_output, worker_errors = worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker_output, worker_errors = worker.communicate()
            pytest.fail(f"the worker did not stop on SIGTERM:\n{worker_output}\n{worker_errors}")
    assert printed_attempts(output) == PRINTED, output
    assert attempts_run_by_workers(output) == [], output
    assert attempts_run_by_workers(worker_output) == ["1", "2"], f"{worker_output}\n{worker_errors}"
    assert worker_output.splitlines()[-1].endswith(" stopped"), f"{worker_output}\n{worker_errors}"
    assert_history_shows_the_retry(server_target, run_id, queued=True)


def run_example_test(example: Path, server_target: str, name: str) -> str:
    """Run one of the example's own tests (examples/pikku/test/<name>.test.ts) against the server."""
    command = ("node", "--import", "tsx", "--test", "--test-reporter=spec", f"test/{name}.test.ts")
    return npm("exec", "--", *command, cwd=example, env=example_env(server_target), timeout=120)


def test_the_app_and_the_adapter_load_one_pikku_core(example: Path, server_target: str) -> None:
    # npm's view: one @pikku/core in the tree, the adapter's peer dependency met by the app's.
    installed = npm("ls", "--all", "--parseable", "@pikku/core", cwd=example).split()
    assert installed == [str(example / "node_modules" / "@pikku" / "core")], installed
    # Node's view: the adapter resolves the module the app resolves.
    run_example_test(example, server_target, "one-core")


def test_a_workflow_that_cancels_itself_ends_cancelled(example: Path, server_target: str) -> None:
    run_example_test(example, server_target, "self-cancel")


def test_a_step_calling_a_missing_rpc_takes_pikkus_not_retryable_path(example: Path, server_target: str) -> None:
    run_example_test(example, server_target, "missing-rpc")
