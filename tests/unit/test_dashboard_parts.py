"""The dashboard's pure parts: the runs list's filters read from and written into URLs, the
attempts' places on the run page's time track, and the CSRF token's check."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from multidict import MultiDict

from workflowstate.client import Failure, Run, RunStatus, StepAttempt, StepState, StepStatus
from workflowstate.server.web.run_filters import BadFilter, RunsQuery
from workflowstate.server.web.sessions import Sessions
from workflowstate.server.web.timeline import build_timeline, format_duration

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)


def test_filters_round_trip_through_the_url() -> None:
    query = RunsQuery.from_query(MultiDict([("workflow", "orders"), ("status", "failed,running"), ("status", "failed"), ("since", "2d"), ("order", "oldest")]))
    assert query.statuses == (RunStatus.FAILED, RunStatus.RUNNING)
    assert query.created_after(T0) == T0 - timedelta(days=2)
    url = query.url(page_token="abc")
    assert url == "/runs?workflow=orders&status=failed&status=running&since=2d&order=oldest&page_token=abc"
    assert RunsQuery.from_query(MultiDict([("since", "2026-01-30")])).created_after() == datetime(2026, 1, 30, tzinfo=timezone.utc)
    assert RunsQuery().url() == "/runs"


@pytest.mark.parametrize(("key", "value", "field"), [("status", "done", "status:"), ("since", "yesterday", "since:"), ("order", "random", "order:")])
def test_a_bad_filter_names_its_field(key: str, value: str, field: str) -> None:
    with pytest.raises(BadFilter, match=field):
        RunsQuery.from_query(MultiDict([(key, value)]))


def _attempt(number: int, status: StepStatus, start: float, end: float) -> StepAttempt:
    error = Failure("boom") if status is StepStatus.FAILED else None
    return StepAttempt("s1", "charge", number, status, None, error, T0 + timedelta(seconds=start), T0 + timedelta(seconds=end))


def test_attempts_are_placed_on_the_runs_time_axis() -> None:
    run = Run("r1", "orders", RunStatus.FAILED, None, None, None, T0, T0 + timedelta(seconds=10))
    step = StepState("s1", "r1", "charge", "pay", None, StepStatus.FAILED, None, Failure("boom"), 2, 1, None, T0, T0,
                     None, None, None, None, None, "worker-7")  # fmt: skip
    timeline = build_timeline(run, [step], [_attempt(2, StepStatus.FAILED, 6, 10), _attempt(1, StepStatus.FAILED, 0, 5)], T0 + timedelta(hours=1))
    first, second = timeline.steps[0].attempts
    assert (first.attempt.attempt, first.left_percent, first.width_percent, first.worker_id) == (1, 0.0, 50.0, None)
    assert (second.attempt.attempt, second.left_percent, second.width_percent, second.worker_id) == (2, 60.0, 40.0, "worker-7")
    assert timeline.steps[0].retryable


def test_durations_read_well() -> None:
    assert [format_duration(timedelta(seconds=s)) for s in (0.0123, 4.25, 125, 7322)] == ["12 ms", "4.2 s", "2 min 5 s", "2 h 2 min"]


def test_a_csrf_token_is_good_for_its_session_only() -> None:
    sessions = Sessions(max_sessions=2, max_per_token=1, idle_seconds=60)
    token = sessions.csrf_token("session-a")
    assert sessions.csrf_ok("session-a", token)
    assert not sessions.csrf_ok("session-b", token)
    assert not sessions.csrf_ok("session-a", None) and not sessions.csrf_ok(None, token)
    assert not Sessions(max_sessions=2, max_per_token=1, idle_seconds=60).csrf_ok("session-a", token), "another process's secret"
