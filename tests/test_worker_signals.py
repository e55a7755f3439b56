"""Worker.run() and AsyncWorker.run() in a real process: Ctrl-C and SIGTERM drain instead of a traceback.

Each test starts a worker process (the way users run one: run() in the main
thread, no signal wiring of its own) against the session server, waits until
its handler is running a task, sends the signal, and checks that the process
finished the task (its result is recorded), exited 0 with no traceback, and had
its previous signal handlers back after run().
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator

import pytest

from workflowstate.client import StepStatus, WorkflowStateClient

WAIT = 30.0

# The handler waits for the stop (bounded), so the signal lands while a task is running.
SYNC_WORKER = """
    import signal, sys
    from workflowstate.client import Worker, WorkflowStateClient

    target, rpc = sys.argv[1:3]
    with WorkflowStateClient(target) as client:
        def handler(task):
            print("started", flush=True)
            return "drained" if worker.stopping.wait(60) else "never stopped"
        worker = Worker(client, {rpc: handler})
        worker.run()
    print("restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
"""

ASYNC_WORKER = """
    import asyncio, signal, sys
    from workflowstate.client import AsyncWorker, AsyncWorkflowStateClient

    target, rpc = sys.argv[1:3]

    async def main():
        async with AsyncWorkflowStateClient(target) as client:
            async def handler(task):
                print("started", flush=True)
                try:
                    await asyncio.wait_for(worker.stopping.wait(), 60)
                except TimeoutError:
                    return "never stopped"
                return "drained"
            worker = AsyncWorker(client, {rpc: handler})
            await worker.run()

    asyncio.run(main())
    print("restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
"""


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next line of the process's stdout, or "" when none came within ``timeout``."""
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("script", [SYNC_WORKER, ASYNC_WORKER], ids=["Worker", "AsyncWorker"])
def test_a_stop_signal_drains_the_running_task_and_exits_cleanly(
    client: WorkflowStateClient, server_target: str, script: str, stop_signal: signal.Signals
) -> None:
    rpc = f"rpc-{uuid.uuid4().hex[:12]}"
    run = client.create_run(f"wf-{rpc}", {})
    step = client.set_step_scheduled(client.insert_step_state(run.run_id, "long", rpc, {}).step_id)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), server_target, rpc],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert _read_line(process, WAIT) == "started", "the worker never ran the task"
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    print(f"worker stderr after {stop_signal.name}:\n{stderr}")
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"{stop_signal.name} received: finishing the running tasks" in stderr
    assert stdout.strip() == "restored True", "run() did not put the previous SIGINT handler back"
    finished = client.get_step_state(run.run_id, "long")
    assert finished.step_id == step.step_id
    assert (finished.status, finished.result, finished.attempt_count) == (StepStatus.SUCCEEDED, "drained", 1)


# A handler that ignores the stop: it blocks (a thread of the Worker, or the AsyncWorker's event loop)
# longer than the test waits. The worker's log goes to stdout, to be read line by line.
SYNC_WORKER_BLOCKED = """
    import logging, sys, threading
    from workflowstate.client import Worker, WorkflowStateClient

    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
    target, rpc = sys.argv[1:3]
    with WorkflowStateClient(target) as client:
        def handler(task):
            print("started", flush=True)
            threading.Event().wait(600)
        worker = Worker(client, {rpc: handler})
        worker.run()
"""

ASYNC_WORKER_BLOCKING_THE_LOOP = """
    import asyncio, logging, sys, time
    from workflowstate.client import AsyncWorker, AsyncWorkflowStateClient

    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
    target, rpc = sys.argv[1:3]

    async def main():
        async with AsyncWorkflowStateClient(target) as client:
            async def handler(task):
                print("started", flush=True)
                time.sleep(600)
            await AsyncWorker(client, {rpc: handler}).run()

    asyncio.run(main())
"""


def _start_worker(client: WorkflowStateClient, server_target: str, script: str) -> subprocess.Popen[str]:
    """A worker process running ``script``, once its handler has started the one task scheduled for it."""
    rpc = f"rpc-{uuid.uuid4().hex[:12]}"
    run = client.create_run(f"wf-{rpc}", {})
    client.set_step_scheduled(client.insert_step_state(run.run_id, "blocked", rpc, {}).step_id)
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), server_target, rpc],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    if _read_line(process, WAIT) != "started":
        process.kill()
        process.communicate()
        pytest.fail("the worker never ran the task")
    return process


def _signal_and_read_until(process: subprocess.Popen[str], stop_signal: signal.Signals, expected: str) -> None:
    """Send ``stop_signal``, then read the worker's log until a line says ``expected``."""
    process.send_signal(stop_signal)
    while expected not in (line := _read_line(process, WAIT)):
        assert line, f"no line saying {expected!r} within {WAIT}s of {stop_signal.name}"


def _exit_code(process: subprocess.Popen[str]) -> int:
    try:
        process.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"the worker process was still alive {WAIT}s after it was told to stop at once")
    return process.returncode


def test_a_second_signal_ends_the_worker_process_while_a_handler_blocks(client: WorkflowStateClient, server_target: str) -> None:
    process = _start_worker(client, server_target, SYNC_WORKER_BLOCKED)
    try:
        _signal_and_read_until(process, signal.SIGINT, "finishing the running tasks")
        _signal_and_read_until(process, signal.SIGINT, "received again: stopping at once")
        assert _exit_code(process) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_third_signal_ends_the_process_when_a_handler_blocks_the_event_loop(
    client: WorkflowStateClient, server_target: str
) -> None:
    process = _start_worker(client, server_target, ASYNC_WORKER_BLOCKING_THE_LOOP)
    try:
        _signal_and_read_until(process, signal.SIGINT, "finishing the running tasks")
        _signal_and_read_until(process, signal.SIGINT, "received again: stopping at once")
        _signal_and_read_until(process, signal.SIGINT, "received a third time: exiting now")
        assert _exit_code(process) == 128 + signal.SIGINT
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
