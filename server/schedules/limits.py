"""The bounds on schedules (--schedule-min-interval, --max-schedules).

A schedule goes on creating runs after the client that made it is gone, on every server sharing
the schema, so what one CreateSchedule may start is bounded: how often one schedule fires, and how
many schedules the schema holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# The default shortest interval: the cron floor (every minute), so neither way of saying when a
# schedule fires makes it fire more often than once a minute unless the operator says so.
DEFAULT_MIN_INTERVAL = timedelta(minutes=1)
# Schedules are written by people, a few per workflow: a thousand is far past real use, and at
# most one run a minute each keeps what they start to about 17 runs a second.
DEFAULT_MAX_SCHEDULES = 1000


@dataclass(frozen=True)
class ScheduleLimits:
    """How often a schedule may fire, and how many the schema may hold."""

    # The shortest interval CreateSchedule accepts (timing.MIN_INTERVAL is the floor of this floor).
    min_interval: timedelta = DEFAULT_MIN_INTERVAL
    # The most schedules of the schema (paused ones count), over every server sharing it.
    max_schedules: int = DEFAULT_MAX_SCHEDULES


__all__ = ["DEFAULT_MAX_SCHEDULES", "DEFAULT_MIN_INTERVAL", "ScheduleLimits"]
