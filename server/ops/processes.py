"""`workflowstate serve --workers N`: N server processes sharing one port (SO_REUSEPORT;
each worker is started with --reuse-port, and the parent refuses a port in use unless given it).

One Python process serves about one core (its event loop is single-threaded). On a machine with
more cores, several processes on one port let the kernel spread connections over them. Each
worker is a complete server; they share nothing but the database, which is all the state needs
(leases and migrations are already safe across servers). This parent only starts, watches and
stops them.

Only the first worker serves the dashboard (the others get --http-listen off): its logins live in
the memory of the process that made them, so one process must see every request of a browser,
which SO_REUSEPORT's spreading of connections would not give; and a dashboard's few requests
need no more than one process. Its gRPC calls go to that worker, whose database is everyone's.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from types import FrameType

from .cli import DASHBOARD_PREFIX, READY_PREFIX

log = logging.getLogger("workflowstate.server.processes")


def _reserve_port(listen: str) -> tuple[socket.socket, str]:
    """Bind (without listening) a socket in the port's reuse group; keep it to hold the port."""
    host, _, port = listen.rpartition(":")
    bare_host = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare_host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((bare_host, int(port)))
    return holder, f"{host}:{holder.getsockname()[1]}"


class _Workers:
    """The worker processes, reaped in one place only.

    Popen.wait/poll must not be mixed with os.wait: a child reaped by one is reported by the other
    as exit 0 (its waitpid fails with ECHILD). Here only os.wait reaps, and statuses are kept by pid.
    """

    def __init__(self, processes: list[subprocess.Popen[str]]) -> None:
        self.processes = processes
        self.exit_codes: dict[int, int] = {}

    def signal_all(self, signum: int) -> None:
        # os.kill, not Popen.send_signal, which polls (and could reap) first. A child not yet
        # reaped keeps its pid, even as a zombie, so the signal cannot reach another process.
        for process in self.processes:
            if process.pid not in self.exit_codes:
                os.kill(process.pid, signum)

    def reap_one(self) -> tuple[int, int]:
        """Wait for the next worker to exit; return its pid and exit code (-N: killed by signal N)."""
        while True:
            pid, status = os.wait()
            for process in self.processes:
                if process.pid == pid:
                    code = os.waitstatus_to_exitcode(status)
                    self.exit_codes[pid] = process.returncode = code
                    return pid, code

    def running(self) -> bool:
        return len(self.exit_codes) < len(self.processes)

    def reap_all(self) -> int:
        """Wait for every worker; 0 when all stopped cleanly, else 1."""
        while self.running():
            self.reap_one()
        return 0 if all(code == 0 for code in self.exit_codes.values()) else 1


def run_workers(
    count: int, listen: str, database_url: str, argv: list[str], *, metrics_listen: str | None = None, http_listen: str | None = None
) -> int:
    """Start `count` workers of `workflowstate serve argv` on one address; return the exit code.

    Each worker serves its own metrics (a process's counters are its own): worker i on the metrics
    port + i, or on a port of its choosing when that port is 0."""
    holder, address = _reserve_port(listen)
    # argparse keeps the last value of a repeated option, so these override the originals.
    worker_argv = [*argv, "--listen", address, "--database-url", database_url, "--workers", "1", "--reuse-port", "--stop-on-stdin-eof"]
    workers = _Workers(
        [
            subprocess.Popen(
                [sys.executable, "-m", "workflowstate.server", *worker_argv, *_metrics_argv(metrics_listen, index), *([] if index == 0 else ["--http-listen", "off"])],
                stdin=subprocess.PIPE,  # never written: its end of file tells the worker this parent ended
                stdout=subprocess.PIPE,
                text=True,
            )
            for index in range(count)
        ]
    )
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        workers.signal_all(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        dashboard_line = ""
        for index, worker in enumerate(workers.processes):
            assert worker.stdout
            line = worker.stdout.readline()
            if line.startswith(READY_PREFIX) and index == 0 and http_listen is not None:
                # The first worker says where its dashboard is (or why not) right after its ready line.
                dashboard_line = worker.stdout.readline()
                line = line if dashboard_line.startswith(DASHBOARD_PREFIX) else ""
            if not line.startswith(READY_PREFIX):
                log.error("a worker failed to start; stopping the others")
                forward(signal.SIGTERM, None)
                return workers.reap_all() or 1
        log.info("started", extra={"address": address, "workers": count, "pids": [w.pid for w in workers.processes]})
        print(f"{READY_PREFIX}{address}", flush=True)
        if dashboard_line:
            print(dashboard_line, end="", flush=True)
        while workers.running():
            pid, code = workers.reap_one()
            if not stopping:
                log.error("a worker exited unexpectedly; stopping the others", extra={"pid": pid, "exit_code": code})
                forward(signal.SIGTERM, None)
                workers.reap_all()
                return 1
            if code != 0:
                log.error("a worker failed while stopping", extra={"pid": pid, "exit_code": code})
        return workers.reap_all()
    finally:
        holder.close()
        for worker in workers.processes:
            for pipe in (worker.stdin, worker.stdout):
                if pipe:
                    pipe.close()


def _metrics_argv(metrics_listen: str | None, index: int) -> list[str]:
    if not metrics_listen:
        return []
    host, _, port = metrics_listen.rpartition(":")
    return ["--metrics-listen", f"{host}:{int(port) + index if int(port) else 0}"]
