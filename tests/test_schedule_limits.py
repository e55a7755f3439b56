"""A schedule may fire at most as often as --schedule-min-interval says (60 s unless told: the cron
floor), and the schema holds at most --max-schedules schedules: past either, CreateSchedule is
refused with a message naming the flag, and nothing is stored."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import grpc
import psycopg
from psycopg import sql
from support.bidi_stream import duration
from support.flows import Ending, ending_of, refusal_of, status_of
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


def _every(schedule_id: str, span: timedelta) -> pb.CreateScheduleRequest:
    return pb.CreateScheduleRequest(schedule_id=schedule_id, workflow="limits", interval=duration(span), input_json="{}")


def _count(db: psycopg.Connection, schema: str) -> int:
    return db.execute(sql.SQL("SELECT count(*) FROM {}.schedules").format(sql.Identifier(schema))).fetchone()[0]


def test_by_default_an_interval_under_a_minute_is_refused(stub, db, server, unique) -> None:
    before = _count(db, server.schema)
    code, details = status_of(stub.CreateSchedule, _every(f"often-{unique}", timedelta(seconds=59)))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "interval must be at least 60 s (this server's --schedule-min-interval) and at most 366 days, got 0:00:59",
    )
    assert _count(db, server.schema) == before
    made = stub.CreateSchedule(_every(f"minutely-{unique}", timedelta(minutes=1))).schedule
    assert made.interval.ToTimedelta() == timedelta(minutes=1)
    stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=made.schedule_id))


def test_the_minimum_interval_is_the_flag(start_server) -> None:
    server = start_server("--schedule-min-interval", "5")
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        code, details = status_of(stub.CreateSchedule, _every("four", timedelta(seconds=4)))
        assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "interval must be at least 5 s (this server's --schedule-min-interval) and at most 366 days, got 0:00:04")
        assert stub.CreateSchedule(_every("five", timedelta(seconds=5))).schedule.schedule_id == "five"


def test_past_the_most_schedules_create_is_refused_until_one_is_deleted(start_server, db) -> None:
    server = start_server("--max-schedules", "2")
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        first = stub.CreateSchedule(_every("first", timedelta(hours=1))).schedule
        stub.CreateSchedule(pb.CreateScheduleRequest(schedule_id="second", workflow="limits", cron="0 9 * * *", input_json="{}"))
        stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id="second"))  # a paused one counts too
        refused = refusal_of(stub.CreateSchedule, _every("third", timedelta(hours=1)))
        assert refused.reason == "LIMIT_REACHED", refused
        assert (refused.code, refused.message) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "the schema holds 2 schedules already, the most this server allows (--max-schedules 2); delete one before creating another",
        )
        assert _count(db, server.schema) == 2
        # At the bound, the same create again still answers with the schedule (the client retries it).
        assert stub.CreateSchedule(_every("first", timedelta(hours=1))).schedule == first
        stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id="first"))
        assert stub.CreateSchedule(_every("third", timedelta(hours=1))).schedule.schedule_id == "third"
        assert _count(db, server.schema) == 2


# The advisory lock the creates of one schema take in turn (schedule_room): "WSSC", then the schema's hash.
_CREATES_LOCK = "SELECT pg_advisory_lock(1465078595, hashtext(%s))"
_CREATES_UNLOCK = "SELECT pg_advisory_unlock(1465078595, hashtext(%s))"


def test_creates_racing_on_two_servers_never_pass_the_bound(start_server, db, unique) -> None:
    schema = f"t_{unique}"
    servers = [start_server("--max-schedules", "3", schema=schema), start_server("--max-schedules", "3", schema=schema)]
    channels = [grpc.insecure_channel(server.target) for server in servers]
    stubs = [pb_grpc.WorkflowStateServiceStub(channel) for channel in channels]
    stubs[0].CreateSchedule(_every("before", timedelta(hours=1)))
    # Every create below reads the count only once the one before it has committed: hold them all
    # at the lock, so that they are in flight together, then let them go.
    db.execute(_CREATES_LOCK, (schema,))
    outcomes: list[Ending] = []
    creates = [
        threading.Thread(target=lambda i=i: outcomes.append(ending_of(stubs[i % 2].CreateSchedule, _every(f"racer-{i}", timedelta(hours=1)))))
        for i in range(6)
    ]
    try:
        for create in creates:
            create.start()
        wait_in_database(db, "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted) >= {}", (len(creates),))
    finally:
        db.execute(_CREATES_UNLOCK, (schema,))
        for create in creates:
            create.join(60)
        for channel in channels:
            channel.close()
    assert sorted((outcome.code.name, outcome.reason) for outcome in outcomes) == [("OK", "")] * 2 + [("RESOURCE_EXHAUSTED", "LIMIT_REACHED")] * 4
    assert _count(db, schema) == 3


def test_the_flags_refuse_values_that_bound_nothing() -> None:
    for flag, value, message in (
        ("--schedule-min-interval", "0.5", "argument --schedule-min-interval: must be at least 1 (second), not '0.5'"),
        ("--max-schedules", "0", "argument --max-schedules: must be"),
        ("--max-streams-per-token", "-1", "argument --max-streams-per-token: must be"),
        ("--max-streams-per-peer", "x", "argument --max-streams-per-peer: must be"),
    ):
        result = subprocess.run([sys.executable, "-m", "workflowstate.server", "serve", flag, value], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr, (flag, result.stderr)
