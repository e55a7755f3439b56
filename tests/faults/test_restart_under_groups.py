"""PostgreSQL restarted (fast shutdown) while groups of writes from 4 client processes are in flight.

One server on a controllable PostgreSQL, told to hold operations until two of a kind wait (the
test-only --test-group-hold), so that they go in groups for certain; its metrics show groups of
every grouped statement of the lifecycle (operations per statement above 1) before the restart and
after it. Four client processes (tests/support/faults_writer_process.py) each run 4 lifecycles at
once: create a run (its request_id the lifecycle's marker), insert a step, running, result, run
completed, through the Python client with retries off, every answer journaled.

The restart hits groups in flight for certain, and groups that PostgreSQL has committed but not yet
answered, the case where an answer can go wrong both ways: the test makes every commit wait for a
synchronous standby that does not exist (synchronous_standby_names; a commit waiting there is
already committed locally), waits until grouped statements wait there, then stops PostgreSQL (fast:
it ends every connection; what was not committed is rolled back) and starts it again without the
setting. The load goes on until every process has completed AFTER_RECOVERY lifecycles begun once
the server was SERVING again; each process then stops by itself. Checked:
- through SQL afterwards: every acknowledged write is there, no write answered with an error is,
  but for an unknown outcome, which allows either state;
- every error answer is UNAVAILABLE, never INTERNAL/UNKNOWN, and its metadata says nothing was
  written or that its outcome is unknown; no call started after the recovery fails;
- the unknown outcomes are counted and bounded: each is a call that was in flight at the stop; at
  least one per statement seen waiting for the standby is there, applied; and there are at most as
  many as operations in the groups the server started from just before the hang to the moment it
  knew the database down;
- the server log has no "unexpected error".
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import grpc
import psycopg
import pytest
from psycopg import sql
from support.controllable_postgres import ControllablePostgres
from support.faults_processes import child
from support.faults_servers import NOT_SERVING, SERVING
from support.faults_writers import Call, Lifecycle, broken_promises, from_journal, unknown_outcomes_applied, untrue_errors
from support.health_watch import HealthWatch
from support.metrics import Samples, group_sizes, metrics_address, scrape
from support.polling import wait_until
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate.server.db.statements import load_statements

SCHEMA = "restart"
PROCESSES = 4
LIFECYCLES_PER_PROCESS = 4  # at once, each on its own client
AFTER_RECOVERY = 5  # lifecycles per process completed after the recovery, before it stops
# The statements of the lifecycle (running and result are both set_step_status).
GROUPED = ("create_run", "insert_step", "set_step_status", "update_run_status")
# Groups of at least 2 for certain while the load lasts; a lone operation still goes within 0.1 s.
SERVER_ARGS = (
    "--test-group-hold", "2", "--test-group-hold-seconds", "0.1",
    "--metrics-listen", "127.0.0.1:0",
    "--pool-timeout", "10", "--health-interval", "2", "--grace-period", "10",
)  # fmt: skip
# The grouped statements, known in pg_stat_activity by their first line (the comment saying what
# they do: the text shown there may be cut before anything further down).
FIRST_LINES = [text.splitlines()[0] for name, text in load_statements("workflowstate.server.state", "state.sql").items() if name in GROUPED]
# How many of them wait for their commit to reach a synchronous standby.
HANGING = "(SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND split_part(query, E'\\n', 1) = ANY({}))"
# Every commit waits for a standby that never connects (a commit waiting there is committed locally).
HANG_COMMITS = "ALTER SYSTEM SET synchronous_standby_names = 'a_standby_that_never_connects'"
COMMITS_AT_THE_NEXT_START = "ALTER SYSTEM RESET synchronous_standby_names"
GROUPS_IN_FLIGHT = 2  # grouped statements the stop finds committed and not yet answered, at least
TIMEOUT = 30.0  # seconds any one phase may take (the whole test takes some 10 s)


@pytest.fixture
def server(serve) -> ServerProcess:
    return serve(SCHEMA, *SERVER_ARGS)


def _groups(samples: Samples) -> dict[str, dict[str, float]]:
    return {statement: group_sizes(samples, statement) for statement in GROUPED}


def _since(later: Samples, earlier: Samples) -> dict[str, dict[str, float]]:
    """The groups of each statement that started between two scrapes."""
    before = _groups(earlier)
    return {statement: {name: value - before[statement][name] for name, value in counts.items()} for statement, counts in _groups(later).items()}


def _grouping_failures(groups: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The statements that did not run groups: no statement of 2 operations or more, or not more operations than statements."""
    return {
        statement: counts
        for statement, counts in groups.items()
        if counts["of 2 or more"] < 1 or counts["operations"] <= counts["statements"]
    }


def _scrape_with_no_call_waiting_for_a_connection(metrics: str) -> Samples:
    """The metrics at a moment no call waits for a database connection: every group counted by then
    has its statement at PostgreSQL already, so the lock taken next waits for it to end."""
    scrapes: list[Samples] = []

    def nobody_waits() -> bool:
        scrapes.append(scrape(metrics))
        return scrapes[-1].get(("workflowstate_db_requests_waiting", ()), 0.0) == 0

    wait_until(nobody_waits, "a moment no call waits for a database connection", TIMEOUT)
    return scrapes[-1]


def _stop_with_commits_in_flight(postgres: ControllablePostgres) -> tuple[int, float, float]:
    """Stop PostgreSQL (fast) while at least GROUPS_IN_FLIGHT grouped statements wait for their commit to
    be replicated, so committed; the next start commits without waiting. The statements waiting when
    the stop began, and when it began and ended."""
    tables = sql.SQL(", ").join(sql.Identifier(SCHEMA, table) for table in ("runs", "steps"))
    waiting = sql.SQL(HANGING).format(sql.Literal(FIRST_LINES))
    # closing(): a connection left once PostgreSQL stopped is closed, never committed.
    with contextlib.closing(postgres.connect()) as admin, contextlib.closing(psycopg.connect(postgres.url)) as holder:
        # The writes running now end first (the lock waits for them), so that every statement the
        # hang holds began after the metrics were read; the next ones wait for the lock meanwhile.
        holder.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(tables))
        admin.execute(HANG_COMMITS)
        admin.execute("SELECT pg_reload_conf()")
        holder.rollback()
        wait_in_database(admin, HANGING + " >= {}", (FIRST_LINES, GROUPS_IN_FLIGHT), timeout=TIMEOUT)
        hanging = admin.execute(sql.SQL("SELECT ") + waiting).fetchone()[0]
        admin.execute(COMMITS_AT_THE_NEXT_START)  # written for the next start; no reload, so this run keeps waiting
        stop_began = time.monotonic()
        postgres.stop("fast")
        stop_returned = time.monotonic()
    return hanging, stop_began, stop_returned


def _journals(folder: Path) -> tuple[list[Call], list[Lifecycle]]:
    calls: list[Call] = []
    lifecycles: list[Lifecycle] = []
    for path in sorted(folder.glob("journal-*.json")):
        more_calls, more_lifecycles = from_journal(json.loads(path.read_text()))
        calls += more_calls
        lifecycles += more_lifecycles
    return calls, lifecycles


def test_restart_under_groups_of_4_client_processes_loses_nothing_acknowledged_and_writes_nothing_refused(
    postgres: ControllablePostgres, server: ServerProcess, tmp_path: Path
) -> None:
    metrics = metrics_address(server.log_text())
    health = HealthWatch(server.target)
    try:
        health.wait_for(SERVING, after=0, timeout=TIMEOUT)
        with contextlib.ExitStack() as processes:
            clients = [
                processes.enter_context(
                    child(
                        "faults_writer_process.py", server.target, str(tmp_path / f"journal-{number}.json"),
                        str(LIFECYCLES_PER_PROCESS), str(AFTER_RECOVERY), str(TIMEOUT), stdin=True,
                    )
                )
                for number in range(PROCESSES)
            ]  # fmt: skip
            wait_until(lambda: not _grouping_failures(_groups(scrape(metrics))), "groups of every statement", TIMEOUT)

            before_hang = _scrape_with_no_call_waiting_for_a_connection(metrics)
            hanging, stop_began, stop_returned = _stop_with_commits_in_flight(postgres)
            known_down = health.wait_for(NOT_SERVING, after=stop_began, timeout=TIMEOUT)
            at_known_down = scrape(metrics)
            postgres.start()
            serving = health.wait_for(SERVING, after=known_down, timeout=TIMEOUT)
            at_recovery = scrape(metrics)

            for client in clients:
                assert client.stdin is not None
                client.stdin.write(f"{serving!r}\n")
                client.stdin.close()
            exits = [client.wait(TIMEOUT + 30) for client in clients]
            assert exits == [0] * PROCESSES, f"a client process failed (its error is above): exit codes {exits}"
            at_end = scrape(metrics)
    finally:
        health.close()

    calls, lifecycles = _journals(tmp_path)
    errors = [call for call in calls if call.code != grpc.StatusCode.OK]
    unknown = [call for call in errors if call.outcome_unknown]
    in_flight_at_the_kill = sum(counts["operations"] for counts in _since(at_known_down, before_hang).values())
    after = _since(at_end, at_recovery)
    with postgres.connect() as conn:
        problems = broken_promises(conn, SCHEMA, lifecycles)
        applied = unknown_outcomes_applied(conn, SCHEMA, lifecycles)
    print(
        f"\n{len(calls)} calls in {len(lifecycles)} lifecycles from {PROCESSES} processes; {hanging} grouped statements waited "
        f"for the standby at the stop; {len(errors)} errors, {len(unknown)} of unknown outcome, {applied} of them applied "
        f"(bound: {in_flight_at_the_kill:.0f} operations in groups started from the hang to NOT_SERVING); SERVING "
        f"{serving - stop_returned:.2f}s after the stop; groups before the hang {_groups(before_hang)}, after the recovery {after}"
    )

    assert not problems, problems
    assert not _grouping_failures(after), f"no groups after the recovery: {after}"
    assert errors, "the restart was not noticed by any call"
    assert {call.code for call in errors} == {grpc.StatusCode.UNAVAILABLE}, {(call.code, call.message) for call in errors}
    assert not untrue_errors(errors), untrue_errors(errors)
    late = [call for call in errors if call.started > serving]
    assert not late, f"calls failed after the recovery: {late}"
    stray = [call for call in unknown if not call.started < stop_returned or not call.ended > stop_began]
    assert not stray, f"unknown outcome of calls not in flight at the stop: {stray}"
    assert applied >= hanging, f"{hanging} statements had committed when PostgreSQL stopped, but only {applied} unknown outcomes were applied"
    assert len(unknown) <= in_flight_at_the_kill, f"more outcomes unknown than operations in flight at the stop: {unknown}"
