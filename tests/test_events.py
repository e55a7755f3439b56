"""Run events over the wire: WatchRun and StreamRunEvents deliver every change once, in a stable
order, resume after any event, and end (WatchRun) when the run finishes."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest
from support.flows import new_run, new_step, reason_of, refusal_of
from support.metrics import metrics_address, scrape
from support.polling import wait_until
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


def describe(event: pb.RunEvent) -> tuple:
    """An event without its id and time: what a test expects."""
    if event.WhichOneof("change") == "run_changed":
        return ("run", pb.RunStatus.Name(event.run_changed.status))
    step = event.step_changed
    return (step.step_name, step.attempt, pb.StepStatus.Name(step.status))


def a_finished_run(stub) -> pb.Run:
    run = new_run(stub)
    step = new_step(stub, run.run_id, "only", retries=1)
    stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id))
    stub.SetStepError(pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="once")))
    stub.CreateRetryAttempt(pb.CreateRetryAttemptRequest(step_id=step.step_id, status=pb.STEP_STATUS_RUNNING))
    stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json="{}"))
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED))
    return run


EXPECTED_LIFE = [
    ("run", "RUN_STATUS_RUNNING"),
    ("only", 1, "STEP_STATUS_PENDING"),
    ("only", 1, "STEP_STATUS_RUNNING"),
    ("only", 1, "STEP_STATUS_FAILED"),
    ("only", 2, "STEP_STATUS_RUNNING"),
    ("only", 2, "STEP_STATUS_SUCCEEDED"),
    ("run", "RUN_STATUS_COMPLETED"),
]


def test_watch_run_tells_every_change_in_order_and_ends_with_the_run(stub) -> None:
    run = a_finished_run(stub)
    events = [response.event for response in stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=30)]
    assert [describe(e) for e in events] == EXPECTED_LIFE
    assert {e.run_id for e in events} == {run.run_id} and {e.workflow for e in events} == {run.workflow}
    assert len({e.event_id for e in events}) == len(events)


@pytest.mark.parametrize("seen", range(len(EXPECTED_LIFE)))
def test_watch_run_resumes_after_any_event(stub, seen: int) -> None:
    run = a_finished_run(stub)
    events = [response.event for response in stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=30)]
    resumed = stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id, after_event_id=events[seen].event_id), timeout=30)
    assert [r.event.event_id for r in resumed] == [e.event_id for e in events[seen + 1 :]]


def test_watch_run_follows_a_live_run_and_is_woken_by_writes_on_another_server(stub, start_server) -> None:
    other = start_server(schema="workflows_test")
    run = new_run(stub)
    received: list[pb.RunEvent] = []
    first_seen = threading.Event()

    def watch() -> None:
        with grpc.insecure_channel(other.target) as channel:
            for response in pb_grpc.WorkflowStateServiceStub(channel).WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=60):
                received.append(response.event)
                first_seen.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert first_seen.wait(30)
    step = new_step(stub, run.run_id, "live")
    stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id))
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure(message="x")))
    watcher.join(60)
    assert not watcher.is_alive(), "the stream ends after the run finished"
    assert [describe(e) for e in received] == [
        ("run", "RUN_STATUS_RUNNING"),
        ("live", 1, "STEP_STATUS_PENDING"),
        ("live", 1, "STEP_STATUS_RUNNING"),
        ("run", "RUN_STATUS_FAILED"),
    ]


def test_watching_after_the_final_event_ends_at_once(stub) -> None:
    run = a_finished_run(stub)
    last = list(stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=30))[-1].event
    assert list(stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id, after_event_id=last.event_id), timeout=30)) == []


def test_stream_run_events_keeps_one_workflow_and_misses_nothing_under_concurrent_writers(stub, server_target) -> None:
    workflow = f"wf-events-{uuid.uuid4().hex[:8]}"
    runs, steps_per_run = 12, 5
    expected = runs * (2 + steps_per_run * 3)  # run created and completed; each step pending, running, succeeded
    received: list[pb.RunEvent] = []
    done = threading.Event()

    def read(after: int, stop_after: int | None) -> None:
        with grpc.insecure_channel(server_target) as channel:
            call = pb_grpc.WorkflowStateServiceStub(channel).StreamRunEvents(
                pb.StreamRunEventsRequest(workflow=workflow, after_event_id=after), timeout=120
            )
            for response in call:
                received.append(response.event)
                if len(received) == expected:
                    done.set()
                if done.is_set() or (stop_after is not None and len(received) >= stop_after):
                    call.cancel()
                    return

    def one_run(_: int) -> None:
        run = new_run(stub, workflow)
        new_run(stub, f"{workflow}-noise")  # another workflow's run: filtered out
        for i in range(steps_per_run):
            step = new_step(stub, run.run_id, f"s{i}")
            stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id))
            stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json="1"))
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED))

    # A reader that stops part way, then one that resumes after the last event the first got:
    # together they must see every event exactly once, while 6 writers race.
    first = threading.Thread(target=read, args=(0, expected // 3))
    first.start()
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one_run, range(runs)))
        first.join(60)
        assert received, "the first reader got events"
        second = threading.Thread(target=read, args=(received[-1].event_id, None))
        second.start()
    assert done.wait(60), f"got {len(received)} of {expected} events"
    second.join(30)
    ids = [e.event_id for e in received]
    assert len(ids) == len(set(ids)) == expected, "no event missed or repeated"
    assert {e.workflow for e in received} == {workflow}
    for run_id in {e.run_id for e in received}:
        of_run = [describe(e) for e in received if e.run_id == run_id]
        assert of_run[0] == ("run", "RUN_STATUS_RUNNING") and of_run[-1] == ("run", "RUN_STATUS_COMPLETED")


def test_event_streams_refuse_bad_input(stub) -> None:
    run = a_finished_run(stub)
    other = a_finished_run(stub)
    other_event = list(stub.WatchRun(pb.WatchRunRequest(run_id=other.run_id), timeout=30))[0].event.event_id
    cases = [
        (stub.WatchRun, pb.WatchRunRequest(run_id="nope"), grpc.StatusCode.INVALID_ARGUMENT, "run_id"),
        (stub.WatchRun, pb.WatchRunRequest(run_id=run.run_id, after_event_id=-1), grpc.StatusCode.INVALID_ARGUMENT, "after_event_id"),
        (stub.WatchRun, pb.WatchRunRequest(run_id=run.run_id, after_event_id=2**62), grpc.StatusCode.NOT_FOUND, "event"),
        (stub.WatchRun, pb.WatchRunRequest(run_id=run.run_id, after_event_id=other_event), grpc.StatusCode.NOT_FOUND, "not an event of run"),
        (stub.StreamRunEvents, pb.StreamRunEventsRequest(after_event_id=2**62), grpc.StatusCode.NOT_FOUND, "event"),
        (stub.StreamRunEvents, pb.StreamRunEventsRequest(workflow="x" * 300), grpc.StatusCode.INVALID_ARGUMENT, "workflow"),
    ]
    for method, request, code, message in cases:
        refused = refusal_of(lambda r, m=method: list(m(r, timeout=30)), request)
        assert (refused.code, refused.reason, message in refused.message) == (code, code.name, True), (request, refused)
    # An unknown run, as for every read of one: MISSING with the run_id.
    unknown = str(uuid.uuid4())
    refused = refusal_of(lambda r: list(stub.WatchRun(r, timeout=30)), pb.WatchRunRequest(run_id=unknown))
    assert (refused.code, refused.reason, refused.metadata) == (grpc.StatusCode.NOT_FOUND, "MISSING", {"run_id": unknown}), refused
    assert "not found" in refused.message, refused


def test_an_event_committed_late_is_not_passed_over(stub, database_url) -> None:
    """An event id is taken before commit: a reader going by id alone would deliver a later event
    first and then never the earlier one. Readers wait for every older transaction instead."""
    workflow = f"wf-late-{uuid.uuid4().hex[:8]}"
    slow_run, fast_run = new_run(stub, workflow), new_run(stub, workflow)
    watch = stub.WatchRun(pb.WatchRunRequest(run_id=fast_run.run_id), timeout=30)
    after = next(watch).event.event_id  # the fast run's creation: the slow run's came before
    watch.cancel()
    with psycopg.connect(database_url) as slow:  # a transaction that writes an event and stays open
        slow.execute("UPDATE workflows_test.runs SET status = 'cancelled' WHERE run_id = %s", (slow_run.run_id,))
        step = new_step(stub, fast_run.run_id, "fast")  # committed while the slow one is open
        early = stub.StreamRunEvents(pb.StreamRunEventsRequest(workflow=workflow, after_event_id=after), timeout=1.5)
        got: list[pb.RunEvent] = []
        with pytest.raises(grpc.RpcError) as ended:
            for response in early:
                got.append(response.event)
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert got == [], "nothing is readable while an older transaction that wrote an event is open"
        slow.commit()
    later = stub.StreamRunEvents(pb.StreamRunEventsRequest(workflow=workflow, after_event_id=after), timeout=30)
    events = []
    for response in later:
        events.append(describe(response.event))
        if len(events) == 2:
            later.cancel()
            break
    assert events == [("run", "RUN_STATUS_CANCELLED"), ("fast", 1, "STEP_STATUS_PENDING")], step.step_id


def test_events_past_their_retention_are_pruned(start_server, database_url) -> None:
    server = start_server("--event-retention", "1")
    with grpc.insecure_channel(server.target) as channel, psycopg.connect(database_url, autocommit=True) as db:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = a_finished_run(stub)
        events = [response.event for response in stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=30)]
        assert len(events) == len(EXPECTED_LIFE)
        wait_in_database(db, f"NOT EXISTS (SELECT FROM {server.schema}.run_events WHERE run_id = {{}})", (run.run_id,))
        code, reason, _, _ = reason_of(
            lambda request: list(stub.WatchRun(request, timeout=30)), pb.WatchRunRequest(run_id=run.run_id, after_event_id=events[2].event_id)
        )
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
        assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == pb.RUN_STATUS_COMPLETED, "only events go"


class Watchers:
    """Many WatchRun streams of one run on one server, each read in its own thread until the run ends."""

    def __init__(self, target: str, run_id: str, count: int) -> None:
        self.received: list[list[tuple]] = [[] for _ in range(count)]
        self._channel = grpc.insecure_channel(target)
        stub = pb_grpc.WorkflowStateServiceStub(self._channel)
        self._streams = [stub.WatchRun(pb.WatchRunRequest(run_id=run_id), timeout=120) for _ in range(count)]
        self._pool = ThreadPoolExecutor(count)
        self._reading = [
            self._pool.submit(self._read, stream, received) for stream, received in zip(self._streams, self.received, strict=True)
        ]

    @staticmethod
    def _read(stream, received: list[tuple]) -> None:
        for response in stream:
            received.append(describe(response.event))

    def have(self, count: int) -> bool:
        return all(len(received) >= count for received in self.received)

    def close(self) -> None:
        for reading in self._reading:
            reading.result(timeout=60)  # each stream ends with the run
        self._pool.shutdown()
        self._channel.close()


def event_reads(address: str) -> float:
    return sum(value for (name, _), value in scrape(address).items() if name == "workflowstate_event_reads_total")


def test_one_read_of_a_run_serves_all_its_watchers_on_a_server(start_server) -> None:
    # No unwoken polls: every read counted is one a wake-up (the change, its NOTIFY, the pump) caused.
    server = start_server("--metrics-listen", "127.0.0.1:0", "--dispatch-poll-interval", "60")
    address = metrics_address(server.log_text())
    writes = 10
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        watchers = Watchers(server.target, run.run_id, 100)
        wait_until(lambda: watchers.have(1), "every watcher read the run's first event on its own")
        reads_before = event_reads(address)
        for n in range(writes):
            new_step(stub, run.run_id, f"s{n}")
            wait_until(lambda n=n: watchers.have(n + 2), f"every watcher has step s{n}")
        reads = event_reads(address) - reads_before
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED))
        watchers.close()
    expected = [("run", "RUN_STATUS_RUNNING")] + [(f"s{n}", 1, "STEP_STATUS_PENDING") for n in range(writes)]
    expected.append(("run", "RUN_STATUS_COMPLETED"))
    for received in watchers.received:
        assert received == expected
    # A change wakes the run's readers up to three times (at its commit, by its NOTIFY, by the
    # pump), each a read by the run's feed: the reads do not grow with the 100 watchers.
    print(f"event reads for {writes} writes to a run with 100 watchers: {reads:.0f}")
    assert writes <= reads <= 3 * writes


def test_a_watcher_that_reads_slowly_falls_behind_and_then_reads_on_its_own(start_server, db: psycopg.Connection) -> None:
    server = start_server("--metrics-listen", "127.0.0.1:0")
    address = metrics_address(server.log_text())
    # Far more than a watcher may have waiting, and (at about 1 kB each) than gRPC's flow-control
    # windows and the sockets' buffers hold: the slow watcher's writes stop long before the end.
    events = 30_000
    padding = "x" * 1000
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        slow = stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id), timeout=120)
        assert describe(next(slow).event) == ("run", "RUN_STATUS_RUNNING")
        fast = Watchers(server.target, run.run_id, 1)
        wait_until(lambda: fast.have(1), "the fast watcher read the run's first event")
        # Many events at once, written straight into the table: a burst no client keeps up with.
        db.execute(
            f"INSERT INTO {server.schema}.run_events (run_id, step_id, step_name, attempt, status) "
            "SELECT %s, gen_random_uuid(), 'burst-' || n || %s, 1, 'pending' FROM generate_series(1, %s) AS n",
            (run.run_id, padding, events),
        )
        # The slow watcher reads nothing meanwhile; the fast one is not held up by it.
        wait_until(lambda: fast.have(1 + events), "the fast watcher has the burst", timeout=120)
        fell_behind = scrape(address)[("workflowstate_event_watchers_fell_behind_total", ())]
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED))
        fast.close()
        rest = [describe(response.event) for response in slow]
    expected = [(f"burst-{n}{padding}", 1, "STEP_STATUS_PENDING") for n in range(1, events + 1)]
    expected.append(("run", "RUN_STATUS_COMPLETED"))
    assert fast.received[0][1:] == expected
    assert rest == expected  # every event once, in order, though it fell behind on the way
    assert fell_behind >= 1
