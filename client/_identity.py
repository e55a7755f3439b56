"""The default name of a lease holder and of a worker: which process, on which host."""

from __future__ import annotations

import os
import socket


def host_and_pid() -> str:
    """``host:pid``: enough for an operator reading GetLease or a step's worker_id to find the process."""
    # Computed per use, not at import: a forked process has another pid.
    return f"{socket.gethostname()}:{os.getpid()}"
