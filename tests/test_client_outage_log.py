"""A server outage is one warning in the client's log, then one warning saying how many attempts it took to reconnect.

Both at the same level, so a log read at WARNING shows that the outage ended, not only that it began.

A real server is stopped while a Worker is subscribed (or watch_run follows a
run), left away until the client has failed to reconnect several times, and
started again on the same port; the client logger's records are counted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
from support.remote_mode import FAST_RECONNECT, free_port, restart, wait_for_steps
from support.server_process import ServerProcess

import grpc

from workflowstate.client import RunEvent, RunStatus, StepTask, Worker, WorkflowStateClient
from workflowstate.client._reconnect import OutageLog

WAIT = 30.0
FAILED_TRIES_WHILE_AWAY = 3
WORKER_LOG = "workflowstate.client.worker"
EVENTS_LOG = "workflowstate.client.events"


def wait_for_records(caplog: pytest.LogCaptureFixture, matches: Callable[[logging.LogRecord], bool], count: int) -> None:
    """Return once ``count`` captured records match (they come from the worker's threads); fail after WAIT."""
    deadline = time.monotonic() + WAIT
    while sum(1 for record in list(caplog.records) if matches(record)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} matching log records after {WAIT}s"
        time.sleep(0.05)  # polling a bounded condition: the records have no event to await


def failed_try_of(logger: str) -> Callable[[logging.LogRecord], bool]:
    return lambda record: record.name == logger and record.levelno == logging.DEBUG and "failed" in record.getMessage()


def assert_one_warning_then_the_attempt_count(caplog: pytest.LogCaptureFixture, logger: str) -> None:
    records = [record for record in caplog.records if record.name == logger]
    warnings = [record.getMessage() for record in records if record.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "lost the server (UNAVAILABLE" in warnings[0]
    assert "reconnected after" in warnings[1]
    [reconnected] = [record for record in records if "reconnected after" in record.getMessage()]
    assert reconnected.levelno == logging.WARNING
    attempts = int(re.search(r"reconnected after (\d+) attempts?", reconnected.getMessage()).group(1))  # type: ignore[union-attr]
    failed_tries = sum(1 for record in records if failed_try_of(logger)(record))
    print(f"{logger}: reconnected after {attempts} attempts; {failed_tries} failed tries logged at debug")
    assert attempts == failed_tries >= FAILED_TRIES_WHILE_AWAY


def test_outage_log_warns_once_per_outage_and_counts_the_attempts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.outage")
    outage = OutageLog(logging.getLogger("test.outage"), "feed")
    outage.connected()  # no outage yet: nothing to say
    for _ in range(2):  # two outages, of 3 and of 1 failed tries
        for _ in range(3):
            outage.failed(grpc.StatusCode.UNAVAILABLE, "gone", 0.1)
        outage.connected()
        outage.connected()  # later messages of the same stream say nothing
    outage.failed(grpc.StatusCode.UNAVAILABLE, "gone", 0.1)
    outage.connected()

    said = [(record.levelname, record.getMessage()) for record in caplog.records if record.levelno > logging.DEBUG]
    warning = ("WARNING", "feed: lost the server (UNAVAILABLE: gone); reconnecting")
    assert said == [
        warning, ("WARNING", "feed: reconnected after 3 attempts"),
        warning, ("WARNING", "feed: reconnected after 3 attempts"),
        warning, ("WARNING", "feed: reconnected after 1 attempt"),
    ]  # fmt: skip


def test_outage_log_says_what_happened_and_what_its_owner_does_not_the_servers_advice_to_protocol_clients(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="test.outage")
    outage = OutageLog(logging.getLogger("test.outage"), "worker w1", "its running tasks go on")
    # What a server shutting down ends a worker's stream with: advice for whoever speaks the protocol.
    shutdown = "the server is shutting down; reconnect to another server and name your tasks in flight in subscribe.running to keep them"
    outage.failed(grpc.StatusCode.UNAVAILABLE, shutdown, 0.1)
    outage.connected()

    said = [(record.levelname, record.getMessage()) for record in caplog.records if record.levelno > logging.DEBUG]
    assert said == [
        ("WARNING", "worker w1: lost the server (UNAVAILABLE: the server is shutting down); reconnecting; its running tasks go on"),
        ("WARNING", "worker w1: reconnected after 1 attempt"),
    ]
    [debug] = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert shutdown in debug, "the whole message is kept for debugging"


def test_a_worker_logs_one_warning_per_outage_and_the_attempt_count_once_reconnected(
    start_server: Callable[..., ServerProcess], db: psycopg.Connection, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="workflowstate.client")
    rpc = f"rpc-{uuid.uuid4().hex[:12]}"
    port = free_port()
    server = restart(start_server, None, port, f"t_{unique}")
    schema = server.schema

    def handler(task: StepTask) -> str:
        return f"done {task.step_name}"

    with WorkflowStateClient(f"127.0.0.1:{port}", channel_options=FAST_RECONNECT) as client:
        worker = Worker(client, {rpc: handler})
        runner = threading.Thread(target=worker.run)
        runner.start()
        try:
            run = client.create_run(f"wf-{unique}", {})
            client.set_step_scheduled(client.insert_step_state(run.run_id, "before", rpc, {}).step_id)
            wait_for_steps(db, schema, run.run_id, "succeeded", 1)

            assert server.stop() == 0
            wait_for_records(caplog, failed_try_of(WORKER_LOG), FAILED_TRIES_WHILE_AWAY)
            restart(start_server, None, port, schema)
            wait_for_records(caplog, lambda record: "reconnected after" in record.getMessage(), 1)
            client.set_step_scheduled(client.insert_step_state(run.run_id, "after", rpc, {}).step_id)
            wait_for_steps(db, schema, run.run_id, "succeeded", 2)
        finally:
            assert worker.stop()
            runner.join(WAIT)

    assert_one_warning_then_the_attempt_count(caplog, WORKER_LOG)
    said = [record.getMessage() for record in caplog.records if record.name == WORKER_LOG and record.levelno > logging.DEBUG]
    assert not [line for line in said if "subscribe." in line], "the worker's log speaks protocol field names"
    [lost] = [line for line in said if "lost the server" in line]
    assert lost.endswith("reconnecting; its running tasks go on, and their results are sent once the server is back"), lost


def test_watch_run_logs_one_warning_per_outage_and_the_attempt_count_once_reconnected(
    start_server: Callable[..., ServerProcess], unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="workflowstate.client")
    port = free_port()
    server = restart(start_server, None, port, f"t_{unique}")
    with WorkflowStateClient(f"127.0.0.1:{port}", channel_options=FAST_RECONNECT) as client:
        run = client.create_run(f"wf-{unique}", {})
        seen: list[RunEvent] = []
        connected = threading.Event()

        def watch() -> None:
            for event in client.watch_run(run.run_id):
                seen.append(event)
                connected.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            assert connected.wait(WAIT)  # the run's first event arrived: the stream is up
            assert server.stop() == 0
            wait_for_records(caplog, failed_try_of(EVENTS_LOG), FAILED_TRIES_WHILE_AWAY)
            restart(start_server, None, port, server.schema)
            client.update_run_status(run.run_id, RunStatus.COMPLETED)  # the event that brings the watcher back
        finally:
            watcher.join(WAIT)
        assert not watcher.is_alive()

    assert [event.run_status for event in seen] == [RunStatus.RUNNING, RunStatus.COMPLETED]
    assert_one_warning_then_the_attempt_count(caplog, EVENTS_LOG)
