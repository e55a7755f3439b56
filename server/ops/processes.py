"""`workflowstate serve --workers N`: N server processes sharing one port (SO_REUSEPORT).

One Python process serves about one core (its event loop is single-threaded). On a machine with
more cores, several processes on one port let the kernel spread connections over them. Each
worker is a complete server; they share nothing but the database, which is all the state needs
(leases and migrations are already safe across servers). This parent only starts, watches and
stops them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from types import FrameType

from .cli import READY_PREFIX

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


def run_workers(count: int, listen: str, database_url: str, argv: list[str], *, metrics_listen: str | None = None) -> int:
    """Start `count` workers of `workflowstate serve argv` on one address; return the exit code.

    Each worker serves its own metrics (a process's counters are its own): worker i on the metrics
    port + i, or on a port of its choosing when that port is 0."""
    holder, address = _reserve_port(listen)
    # argparse keeps the last value of a repeated option, so these override the originals.
    worker_argv = [*argv, "--listen", address, "--database-url", database_url, "--workers", "1"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "workflowstate.server", *worker_argv, *_metrics_argv(metrics_listen, index)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(count)
    ]
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        for worker in workers:
            assert worker.stdout
            line = worker.stdout.readline()
            if not line.startswith(READY_PREFIX):
                log.error("a worker failed to start; stopping the others")
                forward(signal.SIGTERM, None)
                return _wait_all(workers) or 1
        log.info("started", extra={"address": address, "workers": count, "pids": [w.pid for w in workers]})
        print(f"{READY_PREFIX}{address}", flush=True)
        while any(worker.poll() is None for worker in workers):
            pid, status = os.wait()
            if not stopping:
                log.error("a worker exited unexpectedly; stopping the others", extra={"pid": pid, "status": status})
                forward(signal.SIGTERM, None)
                _wait_all(workers)
                return 1
        return _wait_all(workers)
    finally:
        holder.close()
        for worker in workers:
            if worker.stdout:
                worker.stdout.close()


def _metrics_argv(metrics_listen: str | None, index: int) -> list[str]:
    if not metrics_listen:
        return []
    host, _, port = metrics_listen.rpartition(":")
    return ["--metrics-listen", f"{host}:{int(port) + index if int(port) else 0}"]


def _wait_all(workers: list[subprocess.Popen[str]]) -> int:
    """Wait for every worker; 0 when all stopped cleanly."""
    codes = [worker.wait() for worker in workers]
    return 0 if all(code == 0 for code in codes) else 1
