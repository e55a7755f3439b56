"""When schedules fire (server/schedules/timing.py): interval and cron occurrences, daylight saving
changes, and the rule for due and missed occurrences."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest

from workflowstate.server.core.errors import InvalidArgument
from workflowstate.server.schedules.timing import GRACE, CatchUp, Decision, Timing, decide

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- intervals -------------------------------------------------------------------------------


def test_interval_occurrences_are_multiples_of_it_since_the_epoch() -> None:
    hourly = Timing.checked(None, timedelta(hours=1), "")
    assert hourly.after(at("2026-11-26T18:20:31Z")) == at("2026-11-26T19:00:00Z")
    assert hourly.after(at("2026-11-26T19:00:00Z")) == at("2026-11-26T20:00:00Z")  # strictly after
    assert hourly.at_or_before(at("2026-11-26T19:00:00Z")) == at("2026-11-26T19:00:00Z")
    assert hourly.at_or_before(at("2026-11-26T18:59:59.999999Z")) == at("2026-11-26T18:00:00Z")
    odd = Timing.checked(None, timedelta(seconds=7), "")
    assert odd.after(at("1970-01-01T00:00:00Z")) == at("1970-01-01T00:00:07Z")
    assert odd.after(at("2026-01-01T00:00:00Z")).timestamp() % 7 == 0


# --- cron --------------------------------------------------------------------------------------


def test_cron_reads_its_expression_in_its_timezone() -> None:
    weekday_mornings = Timing.checked("0 9 * * MON-FRI", None, "Europe/Paris")
    # Friday 2026-11-27 09:00 in Paris is 08:00 UTC; after it comes Monday 2026-11-30.
    assert weekday_mornings.after(at("2026-11-26T12:00:00Z")) == at("2026-11-27T08:00:00Z")
    assert weekday_mornings.after(at("2026-11-27T08:00:00Z")) == at("2026-11-30T08:00:00Z")
    assert weekday_mornings.at_or_before(at("2026-11-30T08:00:00Z")) == at("2026-11-30T08:00:00Z")
    assert weekday_mornings.at_or_before(at("2026-11-29T23:00:00Z")) == at("2026-11-27T08:00:00Z")
    assert Timing.checked("  */15  *   * * *", None, "").cron == "*/15 * * * *"  # stored with single spaces


def test_a_fixed_time_in_the_hour_skipped_in_spring_runs_at_the_end_of_the_gap() -> None:
    # Paris skipped 02:00-03:00 on 2026-03-29: 02:30 does not exist; Debian's cron runs it at 03:00 CEST.
    night = Timing.checked("30 2 * * *", None, "Europe/Paris")
    assert night.after(at("2026-03-28T12:00:00Z")) == at("2026-03-29T01:00:00Z")  # 03:00 CEST
    assert night.after(at("2026-03-29T01:00:00Z")) == at("2026-03-30T00:30:00Z")  # 02:30 CEST the next day


def test_a_fixed_time_in_the_hour_repeated_in_autumn_runs_once() -> None:
    # Paris repeated 02:00-03:00 on 2026-10-25 (CEST, then CET): 02:30 runs once, at the first.
    night = Timing.checked("30 2 * * *", None, "Europe/Paris")
    first = night.after(at("2026-10-24T12:00:00Z"))
    assert first == at("2026-10-25T00:30:00Z")  # 02:30 CEST
    assert night.after(first) == at("2026-10-26T01:30:00Z")  # 02:30 CET the next day, not 02:30 CET that night


def test_wildcard_hours_follow_real_time_across_the_change() -> None:
    quarter = Timing.checked("*/30 * * * *", None, "Europe/Paris")
    times, instant = [], at("2026-10-25T00:00:00Z")  # 02:00 CEST
    for _ in range(4):
        instant = quarter.after(instant)
        times.append(instant)
    assert [b - a for a, b in pairwise(times)] == [timedelta(minutes=30)] * 3


# --- bad timings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "interval", "zone", "message"),
    [
        (None, None, "", "set exactly one of cron and interval"),
        ("* * * * *", timedelta(hours=1), "", "set exactly one of cron and interval"),
        (None, timedelta(seconds=1) - timedelta(microseconds=1), "", "interval must be at least 1 s"),
        (None, timedelta(hours=1), "UTC", "timezone applies to cron only"),
        ("* * * *", None, "", "cron must have 5 fields"),
        ("*/0 * * * *", None, "", "cron is not a valid expression"),
        ("0 0 31 4 *", None, "", "cron is not a valid expression"),
        ("* * * * *", None, "Nowhere/Town", "timezone is not a known IANA timezone"),
        ("* * * * *", None, "localtime", "timezone 'localtime' is the zone of whichever machine reads it"),
        ("c" * 257, None, "", "cron is 257 characters long; the limit is 256"),
    ],
)
def test_bad_timings_name_their_field(cron, interval, zone, message) -> None:
    with pytest.raises(InvalidArgument, match=f"^{message[:20]}"):
        Timing.checked(cron, interval, zone)


# --- due and missed ------------------------------------------------------------------------------


EVERY_MINUTE = Timing.checked(None, timedelta(minutes=1), "")


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_an_occurrence_handled_in_time_runs(catch_up: CatchUp) -> None:
    due = at("2026-11-26T10:00:00Z")
    assert decide(EVERY_MINUTE, due, due + timedelta(seconds=0.2), catch_up) == Decision(due, due + timedelta(minutes=1))
    # Late by the servers' delay, up to GRACE: still runs, whatever the catch-up.
    hourly = Timing.checked(None, timedelta(hours=1), "")
    assert decide(hourly, due, due + GRACE, catch_up) == Decision(due, due + timedelta(hours=1))


def test_only_the_latest_due_occurrence_may_run() -> None:
    due = at("2026-11-26T10:00:00Z")
    now = due + timedelta(minutes=3, seconds=10)  # 10:00, 10:01, 10:02 and 10:03 are due
    assert decide(EVERY_MINUTE, due, now, CatchUp.SKIP) == Decision(at("2026-11-26T10:03:00Z"), at("2026-11-26T10:04:00Z"))


def test_a_latest_occurrence_older_than_grace_is_missed_or_caught_up() -> None:
    hourly = Timing.checked(None, timedelta(hours=1), "")
    due = at("2026-11-26T05:00:00Z")
    now = at("2026-11-26T10:20:00Z")  # the servers were down for five hours
    assert decide(hourly, due, now, CatchUp.SKIP) == Decision(None, at("2026-11-26T11:00:00Z"))
    assert decide(hourly, due, now, CatchUp.LATEST) == Decision(at("2026-11-26T10:00:00Z"), at("2026-11-26T11:00:00Z"))
    just_missed = at("2026-11-26T10:00:00Z") + GRACE + timedelta(microseconds=1)
    assert decide(hourly, due, just_missed, CatchUp.SKIP).fire_time is None
