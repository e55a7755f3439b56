"""When a schedule fires: its occurrences, and what a server does with the due ones.

Pure functions of the schedule and the database's clock, so every server computes the same
instants (the statement that handles an occurrence names it: schedules.sql fire_occurrence).

- An **interval** schedule fires at the whole multiples of its interval since the Unix epoch, in
  UTC: every hour at the top of the hour, every 10 minutes at :00, :10, ... (no timezone).
- A **cron** schedule fires at the minutes its 5-field expression matches, read in its timezone,
  as Debian's cron does across daylight saving changes (the `cronsim` library): a job at a fixed
  hour and minute that falls in the hour skipped in spring runs at the first minute after the
  gap, and one that falls in the hour repeated in autumn runs once, at its first occurrence; a
  job whose minute or hour field starts with `*` follows real time (every 15 minutes stays every 15
  minutes of elapsed time, so the repeated hour has its occurrences twice).
- **Due and missed**: when a server handles a schedule, every occurrence from its next_fire_time
  up to now is due. Only the latest due occurrence may run: it runs when it is at most GRACE old
  (on time, or late by the servers' own delay), or, with catch-up LATEST, however old it is;
  every earlier due occurrence, and with catch-up SKIP a latest one older than GRACE, is missed
  and never runs. The schedule then waits for its first occurrence after now. So after an outage
  a schedule runs at most once for the whole gap (LATEST) or not at all (SKIP), never a burst.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ..core.errors import InvalidArgument

# The latest due occurrence still runs this late under catch-up SKIP: far more than a server's
# own delay in getting to it (its poll interval plus a statement), far less than an outage.
GRACE = timedelta(seconds=60)
# The shortest interval any server accepts, whatever its --schedule-min-interval: a schedule is a
# run per occurrence, not a busy loop.
MIN_INTERVAL = timedelta(seconds=1)
# The longest interval: past it, "every N" is better said with a cron expression.
MAX_INTERVAL = timedelta(days=366)
MAX_CRON_LENGTH = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Files of the tz database that stand for the machine's own zone, not a zone.
_MACHINE_ZONES = frozenset({"localtime", "posixrules"})
_MICROSECOND = timedelta(microseconds=1)


class Overlap(enum.Enum):
    """What an occurrence does while the schedule's latest run has not finished."""

    SKIP = "skip"  # makes no run (counted in overlap_skips)
    ALLOW = "allow"  # makes its run anyway


class CatchUp(enum.Enum):
    """What runs for occurrences no server handled in time (see the module's docstring)."""

    SKIP = "skip"
    LATEST = "latest"


def zone_of(field: str, name: str) -> ZoneInfo:
    """The IANA timezone `name` ('' is UTC); InvalidArgument naming `field` for an unknown one."""
    if name in _MACHINE_ZONES:
        # Each server would read its own machine's zone: they could disagree on the times.
        raise InvalidArgument(f"timezone {name!r} is the zone of whichever machine reads it: name the zone (such as Europe/Paris)", field=field)
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"{field} is not a known IANA timezone (such as Europe/Paris or UTC): {name[:64]!r}", field=field) from None


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: a cron expression in a timezone, or an interval."""

    cron: str | None
    interval: timedelta | None
    timezone: str = "UTC"

    @classmethod
    def checked(cls, cron: str | None, interval: timedelta | None, timezone_name: str, *, min_interval: timedelta = MIN_INTERVAL) -> Timing:
        """A timing from a request's fields; InvalidArgument naming the field that is wrong.
        `min_interval` is the server's shortest interval (--schedule-min-interval)."""
        if (cron is None) == (interval is None):
            raise InvalidArgument("set exactly one of cron and interval", field=None)
        if interval is not None:
            if timezone_name:
                raise InvalidArgument("timezone applies to cron only: an interval counts from the Unix epoch in UTC", field="timezone")
            shortest = max(min_interval, MIN_INTERVAL)
            if not shortest <= interval <= MAX_INTERVAL:
                raise InvalidArgument(
                    f"interval must be at least {shortest.total_seconds():g} s (this server's --schedule-min-interval) "
                    f"and at most {MAX_INTERVAL.days} days, got {interval}",
                    field="interval",
                )
            return cls(None, interval, "UTC")
        assert cron is not None
        if len(cron) > MAX_CRON_LENGTH:
            raise InvalidArgument(f"cron is {len(cron)} characters long; the limit is {MAX_CRON_LENGTH}", field="cron", limit=MAX_CRON_LENGTH)
        fields = cron.split()
        if len(fields) != 5:
            raise InvalidArgument(f"cron must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}: {cron[:64]!r}", field="cron")
        zone = zone_of("timezone", timezone_name)
        timing = cls(" ".join(fields), None, zone.key)
        try:
            timing.after(datetime.now(timezone.utc))
        except (CronSimError, ValueError) as err:
            raise InvalidArgument(f"cron is not a valid expression: {err}: {cron[:64]!r}", field="cron") from None
        except StopIteration:
            raise InvalidArgument(f"cron never fires: {cron[:64]!r}", field="cron") from None
        return timing

    def after(self, instant: datetime) -> datetime:
        """The first occurrence strictly after `instant` (UTC)."""
        if self.interval is not None:
            step = self.interval // _MICROSECOND
            return _EPOCH + ((instant - _EPOCH) // _MICROSECOND // step + 1) * step * _MICROSECOND
        assert self.cron is not None
        found = next(CronSim(self.cron, instant.astimezone(ZoneInfo(self.timezone))))
        return found.astimezone(timezone.utc)

    def at_or_before(self, instant: datetime) -> datetime | None:
        """The latest occurrence at or before `instant` (UTC); None when there is none."""
        if self.interval is not None:
            step = self.interval // _MICROSECOND
            return _EPOCH + ((instant - _EPOCH) // _MICROSECOND // step) * step * _MICROSECOND
        assert self.cron is not None
        # cronsim in reverse returns matches strictly before its start, unless the start has
        # microseconds (it drops them instead of stepping back): one microsecond later includes `instant`.
        try:
            found = next(CronSim(self.cron, (instant + _MICROSECOND).astimezone(ZoneInfo(self.timezone)), reverse=True))
        except StopIteration:
            return None
        return found.astimezone(timezone.utc)


@dataclass(frozen=True)
class Decision:
    """What handling a due schedule does: the occurrence that runs (None: none), and the next."""

    fire_time: datetime | None
    next_fire_time: datetime


def decide(timing: Timing, due: datetime, now: datetime, catch_up: CatchUp) -> Decision:
    """Handle a schedule whose next occurrence `due` is at or before `now` (the rule above)."""
    latest = timing.at_or_before(now)
    if latest is None or latest < due:
        latest = due  # `due` was computed as an occurrence; never go back before it
    runs = catch_up is CatchUp.LATEST or now - latest <= GRACE
    return Decision(latest if runs else None, timing.after(now))


__all__ = ["GRACE", "MAX_INTERVAL", "MIN_INTERVAL", "CatchUp", "Decision", "Overlap", "Timing", "decide", "zone_of"]
