"""Stop this server when its standard input closes: how a `serve --workers N` worker dies with its parent.

The parent starts each worker with stdin on a pipe whose write end only the parent holds and never
writes to. However the parent ends (exit, crash, SIGKILL), the kernel closes that end, so the worker
reads end of file, and this turns it into a SIGTERM to itself: the same graceful stop, bounded by the
grace period, as when the parent forwards a SIGTERM. Before the server's own handler is installed (while
it connects to the database), SIGTERM's default action ends the process at once, which is right then.

Why a pipe rather than Linux's prctl(PR_SET_PDEATHSIG): the pipe works on every platform; it has no
race (a parent dead before the worker looks has left end of file waiting, where PDEATHSIG set after the
parent's death never fires and needs a getppid() check); PDEATHSIG fires when the thread that forked
the child ends, not the process; and the worker stops gracefully, releasing its leases and draining its
calls, instead of being killed in the middle of them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

log = logging.getLogger("workflowstate.server.stdin_watch")


def _read_until_end(fd: int) -> None:
    try:
        # os.read, not sys.stdin: a daemon thread blocked in a buffered read holds the buffer's lock,
        # which makes the interpreter's own exit fail with a fatal error.
        while os.read(fd, 4096):
            pass
    except OSError:
        pass  # stdin closed or unreadable: its writer cannot reach us either
    log.warning("standard input closed (the parent process ended): stopping")
    os.kill(os.getpid(), signal.SIGTERM)


def stop_when_stdin_closes() -> None:
    """From now on, end of file on stdin sends this process SIGTERM."""
    threading.Thread(target=_read_until_end, args=(0,), name="stdin-watch", daemon=True).start()
