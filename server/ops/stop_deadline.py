"""The stop of `serve` ends within its grace period, whatever state the database is in.

In-flight calls get the grace period but its last second (a fifth of a shorter period), which is
kept for what follows them: ending the streams' tasks, releasing leases, closing the pool. Those
talk to the database, and a database that stopped answering (its host hung, packets dropped) would
hold each of them for psycopg's own cancel and close timeouts, seconds apiece: so they are cut off
at the end of the grace period, leaving what is left to the operating system (its sockets close
with the process; leases not released expire at their ttl, as after a crash). A last resort
catches whatever still runs half a second later (a thread the event loop waits for at its close):
the process exits with code 1, saying its stop was cut short.
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger("workflowstate.server")

# The most of the grace period kept for the work after the calls.
CLEANUP_RESERVE = 1.0
# How long after the grace period the last resort ends the process.
LAST_RESORT_AFTER = 0.5
EXIT_CUT_SHORT = 1


def _exit_now(grace_period: float) -> None:
    log.error("stop not finished within the grace period; exiting now", extra={"grace_period_s": grace_period})
    logging.shutdown()  # flush what the handlers hold
    os._exit(EXIT_CUT_SHORT)


class StopDeadline:
    """The budget of one stop, from the moment it begins."""

    def __init__(self, grace_period: float) -> None:
        self.grace_period = grace_period
        self._ends = time.monotonic() + grace_period
        last_resort = threading.Timer(grace_period + LAST_RESORT_AFTER, _exit_now, args=(grace_period,))
        last_resort.daemon = True
        last_resort.start()

    def drain_time(self) -> float:
        """Seconds the in-flight calls get: the grace period less the cleanup's reserve."""
        return max(self.grace_period - min(CLEANUP_RESERVE, self.grace_period / 5) - self._elapsed(), 0.0)

    def remaining(self) -> float:
        """Seconds left of the grace period."""
        return max(self._ends - time.monotonic(), 0.0)

    def _elapsed(self) -> float:
        return self.grace_period - (self._ends - time.monotonic())
