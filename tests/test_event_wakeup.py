"""A change made through a server wakes that server's event readers at once, without its event pump;
a change made through another server wakes them by NOTIFY, and still arrives through the pump when
no NOTIFY comes.

The same-server tests run a server whose pump and unwoken reader polling are 60 s apart
(`--event-interval 60 --dispatch-poll-interval 60`): an event that arrives within ARRIVES_WITHIN
was delivered by the in-process wake-up (or its follow-up), never by the pump or a reader's poll.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate.client import RunStatus, StepTask, Worker, WorkflowStateClient, WorkflowStateError

QUIET_PUMP = ("--event-interval", "60", "--dispatch-poll-interval", "60")
# Far under the 60 s the pump or a reader's own poll would take; far over a round trip.
ARRIVES_WITHIN = 10.0


def describe(event: Any) -> tuple:
    if event.step is None:
        return ("run", event.run_status.value)
    return (event.step.step_name, event.step.attempt, event.step.status.value)


class Reader:
    """watch_run of one run in a thread; each event lands in a queue with when it arrived."""

    def __init__(self, client: WorkflowStateClient, run_id: str) -> None:
        self.arrived: queue.Queue[tuple[tuple, float]] = queue.Queue()
        self.latencies_ms: list[float] = []
        self.ended_by: WorkflowStateError | None = None
        self._feed = client.watch_run(run_id)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._feed:
                self.arrived.put((describe(event), time.perf_counter()))
        except WorkflowStateError as err:  # the test failed and closed the channel: it says why
            self.ended_by = err

    def expect(self, *events: tuple, since: float | None = None) -> None:
        """These events next, in order, each within ARRIVES_WITHIN; keeps the delay after `since`."""
        for expected in events:
            got, at = self.arrived.get(timeout=ARRIVES_WITHIN)
            assert got == expected
            if since is not None:
                self.latencies_ms.append((at - since) * 1000)

    def join(self) -> None:
        self._thread.join(ARRIVES_WITHIN)
        assert not self._thread.is_alive(), "watch_run ends with the run"
        assert self.ended_by is None


@contextmanager
def worker_running(client: WorkflowStateClient, rpc: str, handler: Callable[[StepTask], Any]) -> Iterator[None]:
    worker = Worker(client, {rpc: handler}, max_in_flight=1, task_lease=timedelta(seconds=30))
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(worker.run)
        try:
            yield
        finally:
            assert worker.stop(timedelta(seconds=30)), "the worker stopped in time"
            running.result(timeout=30)


def test_a_reader_gets_every_change_made_through_its_own_server_without_the_pump(start_server, rpc: str) -> None:
    server = start_server(*QUIET_PUMP)
    tries = iter([RuntimeError("first attempt fails"), None])

    def fail_once(task: StepTask) -> dict:
        error = next(tries)
        if error:
            raise error
        return {"ok": True}

    with WorkflowStateClient(server.target) as client:
        run = client.create_run("wf-wakeup", {"n": 1})
        reader = Reader(client, run.run_id)
        reader.expect(("run", "running"))  # read at the start: no wake-up needed

        began = time.perf_counter()
        step = client.insert_step_state(run.run_id, "s", rpc, {"a": 1}, retries=1)  # StateStore
        reader.expect(("s", 1, "pending"), since=began)
        began = time.perf_counter()
        client.set_step_scheduled(step.step_id)
        reader.expect(("s", 1, "scheduled"), since=began)
        began = time.perf_counter()
        with worker_running(client, rpc, fail_once):
            # The worker's claim (TaskStore.claim), its fail with a retry (TaskStore.fail), the
            # second claim, and its complete (StateStore.complete_task).
            reader.expect(
                ("s", 1, "running"), ("s", 1, "failed"), ("s", 2, "scheduled"), ("s", 2, "running"), ("s", 2, "succeeded"),
                since=began,
            )  # fmt: skip
        began = time.perf_counter()
        client.update_run_status(run.run_id, RunStatus.COMPLETED, output={"done": True})
        reader.expect(("run", "completed"), since=began)
        reader.join()
    print(f"delays from the write to the event, ms: {[round(ms, 1) for ms in reader.latencies_ms]}")


def test_a_change_behind_an_older_open_transaction_still_arrives_once_it_ends(
    start_server, db: psycopg.Connection, database_url: str
) -> None:
    server: ServerProcess = start_server(*QUIET_PUMP)
    with WorkflowStateClient(server.target) as client:
        run = client.create_run("wf-wakeup", {"n": 1})
        reader = Reader(client, run.run_id)
        reader.expect(("run", "running"))
        with psycopg.connect(database_url) as older:
            older.execute("SELECT pg_current_xact_id()")  # a transaction with an xid, left open
            client.update_run_status(run.run_id, RunStatus.COMPLETED, output={"done": True})
            # The change committed behind it, so its event is not readable yet: the wake-up at its
            # commit found nothing, and only the follow-up can deliver it.
            readable = db.execute(
                f"SELECT count(*) FROM {server.schema}.run_events "
                "WHERE run_id = %s AND status = 'completed' AND xact_id < pg_snapshot_xmin(pg_current_snapshot())",
                (run.run_id,),
            ).fetchone()
            assert readable == (0,)
            older.rollback()
            ended = time.perf_counter()
        reader.expect(("run", "completed"), since=ended)
        reader.join()
    print(f"delay from the older transaction's end to the event: {reader.latencies_ms[-1]:.1f} ms")


def test_a_change_made_through_another_server_arrives_through_the_pump(start_server, db: psycopg.Connection) -> None:
    # The reader's server keeps its usual pump (FAST_SERVER_ARGS: 50 ms) but polls unwoken only
    # every 60 s, and no NOTIFY is sent (its run is no longer in the table of followed runs), so the
    # pump is what delivers; the writer's server has no readers of its own.
    reader_server = start_server("--dispatch-poll-interval", "60")
    writer_server = start_server(*QUIET_PUMP, schema=reader_server.schema)
    with WorkflowStateClient(reader_server.target) as reading, WorkflowStateClient(writer_server.target) as writing:
        run = writing.create_run("wf-wakeup", {"n": 1})
        reader = Reader(reading, run.run_id)
        reader.expect(("run", "running"))
        followed_by(db, reader_server, run.run_id)
        db.execute(f"DELETE FROM {reader_server.schema}.run_event_listeners")
        began = time.perf_counter()
        writing.insert_step_state(run.run_id, "s", "doWork", {"a": 1})
        reader.expect(("s", 1, "pending"), since=began)
        began = time.perf_counter()
        writing.update_run_status(run.run_id, RunStatus.CANCELLED)
        reader.expect(("run", "cancelled"), since=began)
        reader.join()
    print(f"delays from the write on the other server to the event, ms: {[round(ms, 1) for ms in reader.latencies_ms]}")


def test_a_step_scheduled_through_its_own_server_reaches_its_worker_without_notify(
    start_server, db: psycopg.Connection, rpc: str
) -> None:
    """set_step_scheduled wakes the server's own worker streams in-process. Without it the worker
    would wait for the NOTIFY, dropped here, or its own poll, 60 s away: the test fails."""
    server = start_server(*QUIET_PUMP)
    db.execute(f'DROP TRIGGER step_scheduled ON "{server.schema}".steps')
    db.commit()
    handled: queue.Queue[str] = queue.Queue()

    def handle(task: StepTask) -> dict:
        handled.put(task.step_name)
        return {"ok": True}

    with WorkflowStateClient(server.target) as client, worker_running(client, rpc, handle):
        run = client.create_run("wf-wakeup", {})
        step = client.insert_step_state(run.run_id, "s", rpc, {})
        client.set_step_scheduled(step.step_id)
        assert handled.get(timeout=ARRIVES_WITHIN) == "s"


def followed_by(db: psycopg.Connection, server: ServerProcess, run_id: str, *, other_than: int | None = None) -> int:
    """Wait until the server follows the run in the table of followed runs (under a LISTEN connection
    other than other_than, when given): from then on its events are NOTIFYed to that server. Returns
    the backend pid of its LISTEN connection."""
    condition = f"EXISTS (SELECT FROM {server.schema}.run_event_listeners WHERE run_id = {{}}::uuid AND listener_pid <> {{}})"
    wait_in_database(db, condition, (run_id, other_than or 0))
    row = db.execute(f"SELECT listener_pid FROM {server.schema}.run_event_listeners WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return row[0]


def test_a_change_made_through_another_server_is_notified_without_the_pump(start_server, db: psycopg.Connection) -> None:
    # Both servers' pumps and unwoken polls are 60 s apart: only the NOTIFY of the reader's run can
    # bring the writer's change within ARRIVES_WITHIN.
    reader_server = start_server(*QUIET_PUMP)
    writer_server = start_server(*QUIET_PUMP, schema=reader_server.schema)
    with WorkflowStateClient(reader_server.target) as reading, WorkflowStateClient(writer_server.target) as writing:
        run = writing.create_run("wf-wakeup", {"n": 1})
        reader = Reader(reading, run.run_id)
        reader.expect(("run", "running"))
        followed_by(db, reader_server, run.run_id)
        began = time.perf_counter()
        step = writing.insert_step_state(run.run_id, "s", "doWork", {"a": 1})
        reader.expect(("s", 1, "pending"), since=began)
        began = time.perf_counter()
        writing.set_step_scheduled(step.step_id)
        reader.expect(("s", 1, "scheduled"), since=began)
        began = time.perf_counter()
        writing.update_run_status(run.run_id, RunStatus.CANCELLED)
        reader.expect(("run", "cancelled"), since=began)
        reader.join()
    print(f"delays from the write on the other server to the event, ms: {[round(ms, 1) for ms in reader.latencies_ms]}")


def test_events_written_while_the_listen_connection_is_down_still_arrive(start_server, db: psycopg.Connection) -> None:
    reader_server = start_server(*QUIET_PUMP)
    writer_server = start_server(*QUIET_PUMP, schema=reader_server.schema)
    with WorkflowStateClient(reader_server.target) as reading, WorkflowStateClient(writer_server.target) as writing:
        run = writing.create_run("wf-wakeup", {"n": 1})
        reader = Reader(reading, run.run_id)
        reader.expect(("run", "running"))
        listener = followed_by(db, reader_server, run.run_id)
        db.execute("SELECT pg_terminate_backend(%s)", (listener,))
        # Written while the reader's server has no LISTEN connection (or just got it back): its
        # NOTIFY reached nobody, so only the read after the reconnect brings it.
        writing.insert_step_state(run.run_id, "during", "doWork", {"a": 1})
        reader.expect(("during", 1, "pending"))
        followed_by(db, reader_server, run.run_id, other_than=listener)
        writing.insert_step_state(run.run_id, "after", "doWork", {"a": 1})
        reader.expect(("after", 1, "pending"))
        writing.update_run_status(run.run_id, RunStatus.CANCELLED)
        reader.expect(("run", "cancelled"))
        reader.join()
