"""Run `workflowstate serve` as a real process on a real port, the way users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from support.process_tree import ProcessId, tree

from workflowstate.server.ops.cli import READY_PREFIX

# Every process of every server started (the server and what it started, such as the workers of
# --workers N), recorded while its parent still ran: an orphan can no longer be found by its parent.
_started: set[ProcessId] = set()


def left_behind(timeout: float) -> list[ProcessId]:
    """The recorded server processes still alive once `timeout` seconds have passed (or none is)."""
    deadline = time.monotonic() + timeout
    while (alive := sorted((process for process in _started if process.alive()), key=lambda process: process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def assert_no_internal_errors(server: ServerProcess) -> None:
    """INTERNAL never answers user input: the servicer logs every unexpected error, so none may appear."""
    log = server.log_text()
    assert "unexpected error" not in log, f"server logged an unexpected error:\n{log[-4000:]}"


class ServerProcess:
    """One server process. Start it, read the address it prints, stop it with a signal."""

    def __init__(
        self, database_url: str, schema: str, *extra_args: str, code: Path | None = None, environment: dict[str, str] | None = None
    ) -> None:
        """A server of `code` when given (a folder of the packages put first on PYTHONPATH: another
        release's, support/release_trees.py), else of this environment's install. `environment`:
        WORKFLOWSTATE_* variables to start it with (the caller's own are never passed on); the flags
        given here and above win over them, as they do for users."""
        self.database_url = database_url
        self.code = code
        self.schema = schema
        self.extra_args = list(extra_args)
        self.environment = dict(environment or {})
        # None: this checkout's server, with the test flags above and no WORKFLOWSTATE_* variable.
        self.command: list[str] | None = None
        self.env: dict[str, str] | None = None
        self.cwd: Path | None = None
        self.address: str | None = None
        self.dashboard_line: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="workflowstate-server-", suffix=".log")[1])

    @classmethod
    def as_given(cls, command: Sequence[str], env: Mapping[str, str], cwd: Path) -> ServerProcess:
        """A server started by exactly `command`, in exactly `env` (an installed entry point, an
        image's environment): no test flag added, nothing inherited from the test's environment."""
        process = cls("", "")
        process.command, process.env, process.cwd = list(command), dict(env), cwd
        return process

    @property
    def dashboard_url(self) -> str:
        """The dashboard's URL, for a server started with --http-listen host:port."""
        prefix = "workflowstate dashboard on "
        assert self.dashboard_line and self.dashboard_line.startswith(prefix), self.dashboard_line
        return self.dashboard_line[len(prefix):].rstrip("/")

    @property
    def target(self) -> str:
        assert self.address, "server not started"
        return self.address

    def start(self, timeout: float = 60.0) -> ServerProcess:
        command = self.command or [
            sys.executable, "-m", "workflowstate.server", "serve",
            "--listen", "127.0.0.1:0",
            "--database-url", self.database_url,
            "--schema", self.schema,
            # Many test servers run at once: none takes the dashboard's default port (a test
            # of the dashboard passes its own --http-listen, which wins, being later).
            "--http-listen", "off",
            *self.extra_args,
        ]  # fmt: skip
        env = self.env if self.env is not None else {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")} | self.environment
        if self.code is not None:
            env = {**env, "PYTHONPATH": str(self.code)}
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=self.cwd)
        self.address = self._read_address(timeout)
        self._record_processes()
        return self

    def _record_processes(self) -> None:
        if self.process is not None:
            _started.update(tree(self.process.pid))

    def _read_address(self, timeout: float) -> str:
        assert self.process and self.process.stdout
        found: list[str] = []

        def read() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                if line.startswith(READY_PREFIX):
                    found.append(line[len(READY_PREFIX):].strip())
                    if self._serves_dashboard():  # the dashboard's line follows at once
                        self.dashboard_line = self.process.stdout.readline().strip()
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.kill()
            raise RuntimeError(f"server did not become ready within {timeout}s; log:\n{self.log_text()[-4000:]}")
        return found[0]

    def _serves_dashboard(self) -> bool:
        """Whether the arguments ask for the dashboard (the last --http-listen wins), or, for a
        command as given without the flag, its environment's WORKFLOWSTATE_HTTP_LISTEN does."""
        arguments = self.command or self.extra_args
        values = [arguments[i + 1] for i, arg in enumerate(arguments[:-1]) if arg == "--http-listen"]
        if not values and self.env is not None and "WORKFLOWSTATE_HTTP_LISTEN" in self.env:
            values = [self.env["WORKFLOWSTATE_HTTP_LISTEN"]]
        return bool(values) and values[-1] != "off"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for a graceful exit; returns the exit code."""
        assert self.process
        if self.process.poll() is None:
            self._record_processes()
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._close_pipe()
        return code

    def _close_pipe(self) -> None:
        if self.process and self.process.stdout:
            self.process.stdout.close()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self._record_processes()
            self.process.kill()
            self.process.wait(10)
        self._close_pipe()
