"""The server under test: `workflowstate serve` as its own process, the way users run it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from workflowstate.server.ops.cli import READY_PREFIX

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


@contextlib.asynccontextmanager
async def serving(database_url: str, schema: str, extra_args: tuple[str, ...] = ()) -> AsyncIterator[str]:
    """Start a server on a free local port with its tables in ``schema``; yield its address; SIGTERM it."""
    log_fd, log_name = tempfile.mkstemp(prefix="bench-server-", suffix=".log")
    log_path = Path(log_name)
    command = [
        sys.executable, "-m", "workflowstate.server", "serve",
        "--listen", "127.0.0.1:0",
        "--database-url", database_url,
        "--schema", schema,
        "--log-level", "warning",
        *extra_args,
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    try:
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=log_fd, env=env)
    finally:
        os.close(log_fd)
    try:
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                address = await _read_address(process)
        except (TimeoutError, RuntimeError) as err:
            raise RuntimeError(f"the server under test did not start: {err}\n{_tail(log_path)}") from None
        yield address
    finally:
        await _stop(process, log_path)
        log_path.unlink(missing_ok=True)


async def _read_address(process: asyncio.subprocess.Process) -> str:
    assert process.stdout
    while line := (await process.stdout.readline()).decode():
        if line.startswith(READY_PREFIX):
            return line[len(READY_PREFIX):].strip()
    raise RuntimeError(f"it exited with {await process.wait()}")


async def _stop(process: asyncio.subprocess.Process, log_path: Path) -> None:
    """SIGTERM, and the graceful stop the server promises; kill it if that takes too long."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            code = await process.wait()
    except TimeoutError:
        process.kill()
        code = await process.wait()
    if code != 0:
        print(f"bench: the server under test exited with {code}\n{_tail(log_path)}", file=sys.stderr)


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-4000:]
