"""Schedules over the wire: the servers make each occurrence's run exactly once (two servers
sharing a schema, the runs counted by schedule_time in the database), the overlap and catch-up
rules, pause, resume and delete, the run events, and every bad input's exact code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta, timezone

import grpc
import psycopg
import pytest
from google.protobuf.duration_pb2 import Duration
from psycopg import sql
from support.bidi_stream import duration
from support.flows import reason_of, refusal_of, status_of
from support.metrics import metrics_address, scrape
from support.polling import wait_until
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SECOND = timedelta(seconds=1)
# Schedules of a second fire within the test's time: the servers are told to accept them.
FAST = ("--schedule-poll-interval", "0.1", "--schedule-min-interval", "1")


@pytest.fixture
def two_servers(start_server) -> tuple[ServerProcess, ServerProcess]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    return start_server(*FAST, "--metrics-listen", "127.0.0.1:0", schema=schema), start_server(*FAST, "--metrics-listen", "127.0.0.1:0", schema=schema)


@pytest.fixture
def stubs(two_servers) -> Iterator[tuple[pb_grpc.WorkflowStateServiceStub, pb_grpc.WorkflowStateServiceStub]]:
    with grpc.insecure_channel(two_servers[0].target) as first, grpc.insecure_channel(two_servers[1].target) as second:
        yield pb_grpc.WorkflowStateServiceStub(first), pb_grpc.WorkflowStateServiceStub(second)


def _every(schedule_id: str, span: timedelta = SECOND, **fields) -> pb.CreateScheduleRequest:
    return pb.CreateScheduleRequest(schedule_id=schedule_id, workflow=f"wf-{schedule_id}", interval=duration(span), input_json='{"n": 1}', **fields)


def _runs(db: psycopg.Connection, schema: str, schedule_id: str) -> list[tuple]:
    """(schedule_time, create_time, status, run_id) of the schedule's runs, by schedule_time."""
    query = sql.SQL("SELECT schedule_time, create_time, status, run_id FROM {}.runs WHERE schedule_id = %s ORDER BY schedule_time")
    return db.execute(query.format(sql.Identifier(schema)), (schedule_id,)).fetchall()


def _runs_at_least(db: psycopg.Connection, schema: str, schedule_id: str, count: int) -> None:
    wait_in_database(db, f"(SELECT count(*) FROM {schema}.runs WHERE schedule_id = {{}}) >= {count}", (schedule_id,))


def _schedule(db: psycopg.Connection, schema: str, schedule_id: str) -> dict:
    query = sql.SQL("SELECT *, now() AS now FROM {}.schedules WHERE schedule_id = %s").format(sql.Identifier(schema))
    with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        row = cursor.execute(query, (schedule_id,)).fetchone()
    assert row is not None
    return row


# --- exactly once, across servers ----------------------------------------------------------


def test_two_servers_make_one_run_per_occurrence_and_announce_it(two_servers, stubs, db) -> None:
    schema = two_servers[0].schema
    schedule_id = f"every-second-{uuid.uuid4().hex[:6]}"
    workflow = f"wf-{schedule_id}"
    # An orchestrator follows the workflow through the second server; the schedule is made through the first.
    events = stubs[1].StreamRunEvents(pb.StreamRunEventsRequest(workflow=workflow), timeout=60)
    created = stubs[0].CreateSchedule(_every(schedule_id, overlap=pb.SCHEDULE_OVERLAP_ALLOW)).schedule
    assert (created.schedule_id, created.workflow, created.interval.ToTimedelta(), created.timezone) == (schedule_id, workflow, SECOND, "UTC")
    assert (created.overlap, created.catch_up, created.paused) == (pb.SCHEDULE_OVERLAP_ALLOW, pb.SCHEDULE_CATCH_UP_SKIP, False)
    assert created.next_fire_time.ToDatetime().microsecond == 0  # a whole second: a multiple of the interval

    first = next(events).event
    assert (first.workflow, first.WhichOneof("change"), first.run_changed.status) == (workflow, "run_changed", pb.RUN_STATUS_RUNNING)
    run = stubs[1].GetRun(pb.GetRunRequest(run_id=first.run_id)).run
    assert (run.workflow, run.input_json, run.schedule_id) == (workflow, '{"n": 1}', schedule_id)
    assert run.schedule_time.ToDatetime() >= created.next_fire_time.ToDatetime()  # the first, unless a server stalled past it
    events.cancel()

    # The runs stay RUNNING: with overlap ALLOW each occurrence still makes its run.
    _runs_at_least(db, schema, schedule_id, 5)
    stubs[1].PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id))
    runs = _runs(db, schema, schedule_id)
    times = [schedule_time for schedule_time, _, _, _ in runs]
    assert len(times) == len(set(times))  # one run per occurrence
    assert all(schedule_time.microsecond == 0 for schedule_time in times)  # occurrences of the interval only
    assert all(create_time >= schedule_time for schedule_time, create_time, _, _ in runs)  # never early
    assert {status for _, _, status, _ in runs} == {"running"}
    lags = sorted((create_time - schedule_time).total_seconds() * 1000 for schedule_time, create_time, _, _ in runs)
    print(f"\nscheduled runs: {len(runs)}, made after their occurrence by {lags[0]:.1f} to {lags[-1]:.1f} ms (median {lags[len(lags) // 2]:.1f})")

    # Each run is counted once, by the server that made it.
    def counted() -> float:
        return sum(scrape(metrics_address(s.log_text())).get(("workflowstate_runs_created_by_schedules_total", ()), 0) for s in two_servers)

    wait_until(lambda: counted() >= len(runs), "the scheduled runs counted")
    assert counted() == len(runs)
    # The unique index never had to refuse a run: no server ever tried an occurrence another had made.
    assert not any("had a run already" in server.log_text() for server in two_servers)


def test_an_occurrence_that_has_a_run_already_gets_no_second_one(start_server, db) -> None:
    """The unique index's refusal, as the servers meet it: a run of a former schedule of the same id
    holds the next occurrence (its time set there on purpose); the server makes none and says so."""
    server = start_server(*FAST)
    schema = sql.Identifier(server.schema)
    schedule_id = f"taken-{uuid.uuid4().hex[:6]}"
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        created = stub.CreateSchedule(_every(schedule_id, timedelta(hours=1), catch_up=pb.SCHEDULE_CATCH_UP_LATEST)).schedule
        upcoming = created.next_fire_time.ToDatetime(tzinfo=timezone.utc)
        db.execute(
            sql.SQL(
                "INSERT INTO {}.runs (run_id, workflow, status, input, schedule_id, schedule_time) "
                "VALUES (gen_random_uuid(), 'earlier', 'completed', 'null', %s, %s)"
            ).format(schema),
            (schedule_id, upcoming - timedelta(hours=1)),
        )
        db.execute(sql.SQL("UPDATE {}.schedules SET next_fire_time = %s WHERE schedule_id = %s").format(schema), (upcoming - timedelta(hours=1), schedule_id))
        wait_in_database(db, f"(SELECT next_fire_time FROM {server.schema}.schedules WHERE schedule_id = {{}}) > now()", (schedule_id,))
    assert [(run[0], run[2]) for run in _runs(db, server.schema, schedule_id)] == [(upcoming - timedelta(hours=1), "completed")]
    wait_until(lambda: "had a run already" in server.log_text(), "the refused occurrence logged")


def test_the_database_refuses_a_second_run_for_one_occurrence(stub, db, server) -> None:
    schedule_id = f"unique-{uuid.uuid4().hex[:6]}"
    insert = sql.SQL(
        "INSERT INTO {}.runs (run_id, workflow, status, input, schedule_id, schedule_time) "
        "VALUES (gen_random_uuid(), %s, 'completed', 'null', %s, '2026-01-01T00:00:00Z')"
    ).format(sql.Identifier(server.schema))
    db.execute(insert, (f"wf-{schedule_id}", schedule_id))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(insert, (f"wf-{schedule_id}", schedule_id))


# --- overlap -------------------------------------------------------------------------------


def test_overlap_skip_makes_no_run_while_the_latest_runs(two_servers, stubs, db) -> None:
    schema = two_servers[0].schema
    schedule_id = f"skip-{uuid.uuid4().hex[:6]}"
    stubs[0].CreateSchedule(_every(schedule_id))  # overlap unspecified: SKIP
    _runs_at_least(db, schema, schedule_id, 1)
    # Two occurrences pass while the first run is RUNNING: counted as skipped, no run made.
    wait_in_database(db, f"(SELECT overlap_skips FROM {schema}.schedules WHERE schedule_id = {{}}) >= 2", (schedule_id,))
    runs = _runs(db, schema, schedule_id)
    assert len(runs) == 1
    stubs[1].UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=str(runs[0][3]), status=pb.RUN_STATUS_COMPLETED))
    skips = _schedule(db, schema, schedule_id)["overlap_skips"]
    _runs_at_least(db, schema, schedule_id, 2)
    second = _runs(db, schema, schedule_id)[1]
    assert second[0] >= runs[0][0] + (skips + 1) * SECOND  # the skipped occurrences never got a run
    listed = _listed(stubs[1], schedule_id)
    assert listed.overlap_skips >= skips and listed.last_run_status == pb.RUN_STATUS_RUNNING


def _listed(stub: pb_grpc.WorkflowStateServiceStub, schedule_id: str) -> pb.Schedule:
    page = stub.ListSchedules(pb.ListSchedulesRequest(page_size=1000))
    return next(schedule for schedule in page.schedules if schedule.schedule_id == schedule_id)


# --- pause, resume, delete -----------------------------------------------------------------


def test_paused_schedules_make_no_runs_and_resume_without_replaying(two_servers, stubs, db) -> None:
    schema = two_servers[0].schema
    schedule_id = f"pause-{uuid.uuid4().hex[:6]}"
    stubs[0].CreateSchedule(_every(schedule_id, overlap=pb.SCHEDULE_OVERLAP_ALLOW))
    _runs_at_least(db, schema, schedule_id, 1)
    paused = stubs[1].PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id)).schedule
    assert paused.paused and not paused.HasField("next_fire_time")
    assert stubs[0].PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule_id)).schedule.update_time == paused.update_time  # no-op
    before = _runs(db, schema, schedule_id)
    paused_at = _schedule(db, schema, schedule_id)["now"]
    # Three occurrences pass while paused (awaited in the database, not slept).
    wait_in_database(db, "clock_timestamp() > {} + interval '3 seconds'", (paused_at,))
    assert _runs(db, schema, schedule_id) == before
    resumed = stubs[0].ResumeSchedule(pb.ResumeScheduleRequest(schedule_id=schedule_id)).schedule
    resumed_at = _schedule(db, schema, schedule_id)["now"]
    assert not resumed.paused and resumed.next_fire_time.ToDatetime(tzinfo=timezone.utc) > paused_at + 3 * SECOND
    assert stubs[1].ResumeSchedule(pb.ResumeScheduleRequest(schedule_id=schedule_id)).schedule.update_time == resumed.update_time  # no-op
    _runs_at_least(db, schema, schedule_id, len(before) + 1)
    after = _runs(db, schema, schedule_id)[len(before):]
    # Nothing of the paused time was replayed: the first run after the resume is of an occurrence after it.
    assert after[0][0] > resumed_at - SECOND
    assert after[0][0] > paused_at + 3 * SECOND


def test_a_deleted_schedule_stops_and_its_runs_stay(two_servers, stubs, db) -> None:
    schema = two_servers[0].schema
    schedule_id = f"delete-{uuid.uuid4().hex[:6]}"
    stubs[0].CreateSchedule(_every(schedule_id))
    _runs_at_least(db, schema, schedule_id, 1)
    stubs[1].DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=schedule_id))
    runs = _runs(db, schema, schedule_id)
    assert len(runs) >= 1
    for call, request in [
        (stubs[0].DeleteSchedule, pb.DeleteScheduleRequest(schedule_id=schedule_id)),
        (stubs[0].PauseSchedule, pb.PauseScheduleRequest(schedule_id=schedule_id)),
        (stubs[1].ResumeSchedule, pb.ResumeScheduleRequest(schedule_id=schedule_id)),
    ]:
        assert reason_of(call, request)[:2] == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    assert schedule_id not in [s.schedule_id for s in stubs[0].ListSchedules(pb.ListSchedulesRequest()).schedules]
    assert db.execute(sql.SQL("SELECT count(*) FROM {}.schedules").format(sql.Identifier(schema))).fetchone() == (0,)
    assert stubs[0].GetRun(pb.GetRunRequest(run_id=str(runs[0][3]))).run.schedule_id == schedule_id


# --- missed occurrences ----------------------------------------------------------------------


@pytest.mark.parametrize("catch_up", [pb.SCHEDULE_CATCH_UP_SKIP, pb.SCHEDULE_CATCH_UP_LATEST])
def test_occurrences_missed_while_no_server_ran(start_server, db, catch_up: int) -> None:
    """A daily schedule whose next occurrence is set 5 days back, as if every server had been down
    since: SKIP runs none of the missed ones, LATEST the latest once; both then wait for the first
    occurrence after now. (Daily, not hourly: occurrences fall on multiples of the interval, and an
    hourly one came due for real when the test ran across the hour.)"""
    server = start_server(*FAST)
    schema = sql.Identifier(server.schema)
    schedule_id = f"missed-{uuid.uuid4().hex[:6]}"
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        created = stub.CreateSchedule(_every(schedule_id, timedelta(days=1), catch_up=catch_up, overlap=pb.SCHEDULE_OVERLAP_ALLOW)).schedule
        upcoming = created.next_fire_time.ToDatetime(tzinfo=timezone.utc)
        db.execute(
            sql.SQL("UPDATE {}.schedules SET next_fire_time = next_fire_time - interval '5 days' WHERE schedule_id = %s").format(schema),
            (schedule_id,),
        )
        # Handled once the servers moved it back to the future (the loop looks at least every 0.1 s).
        wait_in_database(db, f"(SELECT next_fire_time FROM {server.schema}.schedules WHERE schedule_id = {{}}) > now()", (schedule_id,))
        assert _listed(stub, schedule_id).next_fire_time.ToDatetime(tzinfo=timezone.utc) == upcoming
        runs = _runs(db, server.schema, schedule_id)
        if catch_up == pb.SCHEDULE_CATCH_UP_SKIP:
            assert runs == []
        else:
            assert [schedule_time for schedule_time, _, _, _ in runs] == [upcoming - timedelta(days=1)]


def test_a_schedule_whose_times_cannot_be_computed_holds_up_no_other(start_server, db) -> None:
    """A stored schedule whose timezone the system no longer knows is logged once and skipped."""
    server = start_server(*FAST)
    broken = f"broken-{uuid.uuid4().hex[:6]}"
    db.execute(
        sql.SQL(
            "INSERT INTO {}.schedules (schedule_id, workflow, cron, timezone, input, overlap, catch_up, next_fire_time) "
            "VALUES (%s, 'w', '* * * * *', 'Gone/Away', 'null', 'allow', 'skip', now() - interval '1 second')"
        ).format(sql.Identifier(server.schema)),
        (broken,),
    )
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        schedule_id = f"fine-{uuid.uuid4().hex[:6]}"
        stub.CreateSchedule(_every(schedule_id, overlap=pb.SCHEDULE_OVERLAP_ALLOW))
        _runs_at_least(db, server.schema, schedule_id, 2)
    assert _runs(db, server.schema, broken) == []
    assert server.log_text().count("cannot compute the next occurrence of a schedule") == 1


# --- the API ---------------------------------------------------------------------------------


def test_create_is_idempotent_for_the_same_request_and_refuses_another(stub) -> None:
    schedule_id = f"same-{uuid.uuid4().hex[:6]}"
    request = pb.CreateScheduleRequest(
        schedule_id=schedule_id, workflow="reports", cron="0  9 * * mon-fri", timezone="Europe/Paris", input_json='{"a": [1, 2]}'
    )
    first = stub.CreateSchedule(request).schedule
    assert (first.cron, first.timezone, first.HasField("interval")) == ("0 9 * * mon-fri", "Europe/Paris", False)
    local = first.next_fire_time.ToDatetime(tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)
    again = stub.CreateSchedule(pb.CreateScheduleRequest(
        schedule_id=schedule_id, workflow="reports", cron="0 9 * * mon-fri", timezone="Europe/Paris", input_json='{"a":[1,2]}'
    )).schedule  # fmt: skip
    assert again == first
    other = pb.CreateScheduleRequest(schedule_id=schedule_id, workflow="reports", cron="0 10 * * *", timezone="Europe/Paris")
    refused = refusal_of(stub.CreateSchedule, other)
    assert (refused.code, refused.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS"), refused
    assert refused.message.endswith("delete it first to change them"), "the message says what to do"
    stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=schedule_id))


def test_list_schedules_pages_by_id(stub) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-{n}" for n in range(5)]
    for schedule_id in ids:
        stub.CreateSchedule(pb.CreateScheduleRequest(schedule_id=schedule_id, workflow="w", cron="0 0 1 1 *"))
    seen, token = [], ""
    while True:
        page = stub.ListSchedules(pb.ListSchedulesRequest(page_size=2, page_token=token))
        assert len(page.schedules) <= 2
        seen += [schedule.schedule_id for schedule in page.schedules]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and [s for s in seen if s.startswith(prefix)] == ids
    for schedule_id in ids:
        stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=schedule_id))


def _create(**fields) -> pb.CreateScheduleRequest:
    return pb.CreateScheduleRequest(**{"schedule_id": "bad-input", "workflow": "w", "interval": duration(timedelta(minutes=5)), **fields})


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_create(schedule_id=""), "schedule_id is required"),
        (_create(schedule_id="has space"), "schedule_id must be 1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit, got 'has space'"),
        (_create(schedule_id="-dash"), "schedule_id must be 1 to 128"),
        (_create(schedule_id="x" * 129), "schedule_id must be 1 to 128"),
        (_create(workflow=""), "workflow is required"),
        (_create(workflow="w" * 257), "workflow is 257 characters long; the limit is 256"),
        (_create(cron="* * * * *"), "set exactly one of cron and interval"),
        (pb.CreateScheduleRequest(schedule_id="bad-input", workflow="w"), "set exactly one of cron and interval"),
        (_create(interval=duration(timedelta(0))), "interval must be at least 60 s (this server's --schedule-min-interval) and at most 366 days, got 0:00:00"),
        (_create(interval=duration(timedelta(milliseconds=999))), "interval must be at least 60 s (this server's --schedule-min-interval) and at most 366 days, got 0:00:00.999000"),
        (_create(interval=duration(-SECOND)), "interval must be at least 60 s"),
        (_create(interval=duration(timedelta(days=367))), "interval must be at least 60 s (this server's --schedule-min-interval) and at most 366 days, got 367 days"),
        (_create(interval=Duration(seconds=1, nanos=-1)), "interval is not a valid duration"),
        (_create(timezone="Europe/Paris"), "timezone applies to cron only"),
        (_create(interval=None, cron="* * * *"), "cron must have 5 fields (minute hour day-of-month month day-of-week), got 4: '* * * *'"),
        (_create(interval=None, cron="0 * * * * *"), "cron must have 5 fields (minute hour day-of-month month day-of-week), got 6"),
        (_create(interval=None, cron="61 * * * *"), "cron is not a valid expression: "),
        (_create(interval=None, cron="x * * * *"), "cron is not a valid expression: "),
        (_create(interval=None, cron="0 0 30 2 *"), "cron is not a valid expression: "),
        (_create(interval=None, cron="* * * * *", timezone="Mars/Olympus"), "timezone is not a known IANA timezone (such as Europe/Paris or UTC): 'Mars/Olympus'"),
        (_create(interval=None, cron="* * * * *", timezone="../etc/passwd"), "timezone is not a known IANA timezone"),
        (_create(input_json="{"), "input_json is not valid JSON"),
        (_create(input_json='"' + "x" * (1 << 20) + '"'), "input_json is larger than the limit of 1048576 bytes"),
        (_create(overlap=7), "overlap must be SCHEDULE_OVERLAP_SKIP or SCHEDULE_OVERLAP_ALLOW, got 7"),
        (_create(catch_up=9), "catch_up must be SCHEDULE_CATCH_UP_SKIP or SCHEDULE_CATCH_UP_LATEST, got 9"),
    ],
)
def test_bad_schedules_are_invalid_argument_and_nothing_is_stored(stub, db, server, request_, message) -> None:
    count = sql.SQL("SELECT count(*) FROM {}.schedules").format(sql.Identifier(server.schema))
    before = db.execute(count).fetchone()
    code, details = status_of(stub.CreateSchedule, request_)
    assert (code, details[: len(message)]) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    assert db.execute(count).fetchone() == before


@pytest.mark.parametrize(
    ("call", "request_", "code", "message"),
    [
        ("PauseSchedule", pb.PauseScheduleRequest(), grpc.StatusCode.INVALID_ARGUMENT, "schedule_id is required"),
        ("ResumeSchedule", pb.ResumeScheduleRequest(schedule_id="a b"), grpc.StatusCode.INVALID_ARGUMENT, "schedule_id must be 1 to 128"),
        ("DeleteSchedule", pb.DeleteScheduleRequest(schedule_id="no-such-schedule"), grpc.StatusCode.NOT_FOUND, "schedule 'no-such-schedule' not found"),
        ("PauseSchedule", pb.PauseScheduleRequest(schedule_id="no-such-schedule"), grpc.StatusCode.NOT_FOUND, "schedule 'no-such-schedule' not found"),
        ("ResumeSchedule", pb.ResumeScheduleRequest(schedule_id="no-such-schedule"), grpc.StatusCode.NOT_FOUND, "schedule 'no-such-schedule' not found"),
        ("ListSchedules", pb.ListSchedulesRequest(page_size=1001), grpc.StatusCode.INVALID_ARGUMENT, "page_size must be 1 to 1000 (0 for 50), got 1001"),
        ("ListSchedules", pb.ListSchedulesRequest(page_size=-1), grpc.StatusCode.INVALID_ARGUMENT, "page_size must be 1 to 1000"),
        ("ListSchedules", pb.ListSchedulesRequest(page_token="nonsense"), grpc.StatusCode.INVALID_ARGUMENT, "page_token is not a page token of this server's ListSchedules"),
    ],
)
def test_other_bad_requests(stub, call: str, request_, code, message: str) -> None:
    refused = refusal_of(getattr(stub, call), request_)
    assert (refused.code, refused.reason) == (code, code.name), refused
    assert refused.message[: len(message)] == message
