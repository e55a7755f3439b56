"""PostgreSQL goes away under 8 concurrent writers: restarted (fast shutdown), and stopped for 20 s.

Each writer runs step lifecycles through the Python client (create run, insert step, running,
result), each lifecycle under its own marker (the run's request_id and input, the step's data and
result), with gRPC retries off so that every answer belongs to exactly one attempt. Checked:
- during the outage calls are answered UNAVAILABLE only (never INTERNAL/UNKNOWN), and at once
  while the server knows the database is down (no pool-timeout wait);
- health says NOT_SERVING, then SERVING within about a second of PostgreSQL's return (bound
  2.5 s, figure printed), and calls made after that succeed;
- through SQL afterwards: every acknowledged write is there, and no write answered with an error
  is. One kind of error answer is exempt, and counted: an unknown outcome (UNAVAILABLE, its
  metadata's outcome `unknown`), for a statement that was in flight when its connection died;
  PostgreSQL may have committed it just before (the server cannot know), so either state is
  accepted, and there can be at most one per writer.
"""

from __future__ import annotations

import time

import grpc
import pytest
from support.controllable_postgres import ControllablePostgres
from support.faults_servers import NOT_SERVING, SERVING
from support.faults_writers import WRITERS, Writers, broken_promises, untrue_errors
from support.health_watch import HealthWatch
from support.server_process import ServerProcess

# The pool timeout is long so that a call waiting it out (instead of failing fast) shows.
SERVER_ARGS = ("--pool-timeout", "10", "--health-interval", "2", "--grace-period", "10")
RECOVERY_BOUND = 2.5  # seconds from PostgreSQL's start to SERVING; "about a second" is asked
FAIL_FAST_BOUND = 3.0  # seconds a call may take while the database is known to be down (a loaded machine stalls)
LIFECYCLES_AROUND_THE_OUTAGE = 3  # per writer, before it and after the recovery


@pytest.fixture
def server(serve) -> ServerProcess:
    return serve("outage", *SERVER_ARGS)


def _outage(postgres: ControllablePostgres, server: ServerProcess, *, down_for: float) -> None:
    health = HealthWatch(server.target)
    writers = Writers(server.target)
    try:
        health.wait_for(SERVING, after=0, timeout=10)
        writers.wait_until(lambda: writers.completed_since(0) >= WRITERS * LIFECYCLES_AROUND_THE_OUTAGE, 60, "writes before the outage")

        stopped_at = time.monotonic()
        postgres.stop("fast")
        known_down = health.wait_for(NOT_SERVING, after=stopped_at, timeout=10)
        if down_for:
            writers.wait_until(lambda: time.monotonic() > stopped_at + down_for, down_for + 10, "the outage's end")
        starting = time.monotonic()
        postgres.start()
        back = time.monotonic()  # pg_ctl start -w returned: PostgreSQL accepts connections
        serving = health.wait_for(SERVING, after=known_down, timeout=30)
        writers.wait_until(
            lambda: writers.completed_since(serving) >= WRITERS * LIFECYCLES_AROUND_THE_OUTAGE, 60, "writes after the recovery"
        )
    finally:
        writers.stop()
        health.close()

    errors = [call for call in writers.calls if call.code != grpc.StatusCode.OK]
    unknown = [call for call in errors if call.outcome_unknown]
    while_known_down = [call for call in writers.calls if known_down + 0.1 < call.started and call.ended < back]
    slowest = max(while_known_down, key=lambda call: call.ended - call.started, default=None)
    waited = slowest.ended - slowest.started if slowest else 0.0
    print(
        f"\noutage of {back - stopped_at:.1f}s: {len(writers.calls)} calls, {len(errors)} errors ({len(unknown)} of unknown outcome); "
        f"NOT_SERVING {known_down - stopped_at:.2f}s after the stop; SERVING {serving - starting:.2f}s after pg_ctl start was called "
        f"({serving - back:+.2f}s after it returned, {back - starting:.2f}s later); slowest call while known down {waited * 1000:.0f} ms; "
        f"health: {[(round(when - stopped_at, 2), status) for when, status in health.seen]}"
    )

    assert errors, "the outage was not noticed by any call"
    assert {call.code for call in errors} == {grpc.StatusCode.UNAVAILABLE}, {(call.code, call.message) for call in errors}
    assert not untrue_errors(errors), untrue_errors(errors)
    assert len(unknown) <= WRITERS, f"more outcomes unknown than statements in flight at the stop: {unknown}"
    assert while_known_down, "no call was made while the database was known to be down"
    assert waited < FAIL_FAST_BOUND, f"a call waited {waited:.2f}s although the database was known to be down: {slowest}"
    assert serving > starting, "health said SERVING while PostgreSQL was still down"
    assert serving - starting < RECOVERY_BOUND, f"SERVING came {serving - starting:.2f}s after PostgreSQL was started"
    late = [call for call in errors if call.started > serving]
    assert not late, f"calls failed after the recovery: {late}"

    with postgres.connect() as conn:
        problems = broken_promises(conn, "outage", writers.lifecycles)
    assert not problems, problems


def test_restart_with_fast_shutdown_under_writers_loses_nothing_acknowledged_and_writes_nothing_refused(postgres, server) -> None:
    _outage(postgres, server, down_for=0)


def test_20_second_outage_under_writers_fails_fast_recovers_within_a_second_and_keeps_its_promises(postgres, server) -> None:
    _outage(postgres, server, down_for=20)
