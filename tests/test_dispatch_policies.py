"""Dispatch policies over the wire: backoff, timeouts, priority, concurrency keys, rate
limits and the defaults per rpc name. The evidence is the database's own timestamps (running_time,
succeeded_time, not_before, the attempts' update_time): orders and counts, never durations of the test.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import grpc
import psycopg
import pytest
from support.bidi_stream import duration
from support.flows import history_of, new_run, reason_of, scheduled_steps, status_of
from support.task_stream import TaskStream
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SCHEMA = "workflows_test"
SWEEP = ("--dispatch-poll-interval", "0.2")


def set_defaults(stub: pb_grpc.WorkflowStateServiceStub, rpc_name: str, **fields: Any) -> pb.DispatchDefaults:
    return stub.SetDispatchDefaults(pb.SetDispatchDefaultsRequest(defaults=pb.DispatchDefaults(rpc_name=rpc_name, **fields))).defaults


def rows(db: psycopg.Connection, query: str, *params: Any) -> list[tuple[Any, ...]]:
    return db.execute(query, params).fetchall()


# Bad values: INVALID_ARGUMENT naming the field, nothing written.

BAD_OPTIONS = [
    ({"backoff_coefficient": 0.5}, "options.backoff_coefficient must be at least 1"),
    ({"backoff_coefficient": float("nan")}, "options.backoff_coefficient must be a finite number"),
    ({"jitter": 1.5}, "options.jitter must be from 0 to 1"),
    ({"jitter": -0.1}, "options.jitter must be from 0 to 1"),
    ({"max_retry_delay": duration(timedelta(seconds=-1))}, "options.max_retry_delay must not be negative"),
    ({"retry_delay": duration(timedelta(seconds=-1))}, "options.retry_delay must not be negative"),
    ({"start_to_close": duration(timedelta(0))}, "options.start_to_close must be positive"),
    ({"schedule_to_start": duration(timedelta(seconds=-2))}, "options.schedule_to_start must be positive"),
    ({"retries": -1}, "options.retries must not be negative"),
    ({"concurrency_key": "k" * 257}, "options.concurrency_key is 257 characters long"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS, ids=[message.split(" ")[0] for _, message in BAD_OPTIONS])
def test_bad_step_options_are_invalid_argument_naming_the_field(stub, db, rpc, options, message) -> None:
    run = new_run(stub)
    request = pb.InsertStepStateRequest(run_id=run.run_id, step_name="s", rpc_name=rpc, options=pb.StepOptions(**options))
    code, details = status_of(stub.InsertStepState, request)
    assert (code, message in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), details
    assert rows(db, f"SELECT count(*) FROM {SCHEMA}.steps WHERE run_id = %s", run.run_id) == [(0,)]
    [step] = scheduled_steps(stub, f"{rpc}-ok", 1)
    scheduled = pb.SetStepScheduledRequest(step_id=step.step_id, options=pb.StepOptions(**options))
    code, details = status_of(stub.SetStepScheduled, scheduled)
    assert (code, message in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), details


BAD_DEFAULTS = [
    ({"rpc_name": ""}, "defaults.rpc_name is required"),
    ({"concurrency_limit": 0}, "defaults.concurrency_limit must be at least 1"),
    ({"rate_limit": 0, "rate_period": duration(timedelta(seconds=1))}, "defaults.rate_limit must be at least 1"),
    ({"rate_limit": 5, "rate_period": duration(timedelta(0))}, "defaults.rate_period must be positive"),
    ({"rate_limit": 5}, "defaults.rate_limit and defaults.rate_period go together"),
    ({"options": pb.StepOptions(jitter=2)}, "defaults.options.jitter must be from 0 to 1"),
    ({"options": pb.StepOptions(concurrency_key="c")}, "defaults.options.concurrency_key cannot be a default"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_DEFAULTS, ids=[message.split(" ")[0] for _, message in BAD_DEFAULTS])
def test_bad_defaults_are_invalid_argument_naming_the_field(stub, rpc, fields, message) -> None:
    request = pb.SetDispatchDefaultsRequest(defaults=pb.DispatchDefaults(**{"rpc_name": rpc, **fields}))
    code, details = status_of(stub.SetDispatchDefaults, request)
    assert (code, message in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), details
    assert rpc not in [d.rpc_name for d in stub.ListDispatchDefaults(pb.ListDispatchDefaultsRequest()).defaults]


def test_defaults_fill_in_what_a_step_does_not_set_and_its_own_options_win(stub, rpc) -> None:
    stored = set_defaults(
        stub, rpc, options=pb.StepOptions(retries=3, retry_delay=duration(timedelta(seconds=2)), backoff_coefficient=2, priority=7),
        concurrency_limit=2, rate_limit=10, rate_period=duration(timedelta(minutes=1)),
    )
    assert (stored.options.retries, stored.options.priority, stored.concurrency_limit, stored.rate_limit) == (3, 7, 2, 10)
    assert rpc in [d.rpc_name for d in stub.ListDispatchDefaults(pb.ListDispatchDefaultsRequest()).defaults]
    run = new_run(stub)
    plain = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name="plain", rpc_name=rpc)).step
    assert (plain.options.retries, plain.options.backoff_coefficient, plain.options.priority) == (3, 2.0, 7)
    assert plain.options.retry_delay.ToTimedelta() == timedelta(seconds=2) and plain.retries == 3
    own = pb.StepOptions(retries=0, priority=-1, concurrency_key="customer-1")
    mine = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name="own", rpc_name=rpc, options=own)).step
    assert (mine.options.retries, mine.options.priority, mine.options.backoff_coefficient, mine.options.concurrency_key) == (0, -1, 2.0, "customer-1")
    # Scheduling may replace some options; the others stay.
    rescheduled = stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=mine.step_id, options=pb.StepOptions(priority=9))).step
    assert (rescheduled.options.priority, rescheduled.options.retries, rescheduled.options.concurrency_key) == (9, 0, "customer-1")
    # Deleting the defaults leaves the steps' options as they took them.
    stub.DeleteDispatchDefaults(pb.DeleteDispatchDefaultsRequest(rpc_name=rpc))
    assert stub.GetStepState(pb.GetStepStateRequest(run_id=run.run_id, step_name="plain")).step.options.priority == 7
    code, reason, _, _ = reason_of(stub.DeleteDispatchDefaults, pb.DeleteDispatchDefaultsRequest(rpc_name=rpc))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


# Backoff.


def test_backoff_grows_by_the_coefficient_up_to_the_cap(stub, db, rpc) -> None:
    """delay_n = min(retry_delay * coefficient^(n-1), max_retry_delay): 10, 20, 30 (capped), 30 ms,
    read as the next attempt's not_before minus the failed attempt's time, in the database."""
    options = {"retries": 4, "retry_delay": duration(timedelta(milliseconds=10)), "backoff_coefficient": 2,
               "max_retry_delay": duration(timedelta(milliseconds=30))}
    [step] = scheduled_steps(stub, rpc, 1, **options)
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1)
    delays = []
    for attempt in range(1, 5):
        task = worker.expect("task")
        assert task.attempt == attempt
        worker.fail(task, f"failure {attempt}")
        assert worker.expect("accepted").status == pb.STEP_STATUS_SCHEDULED
        # No credit yet: the next attempt stays scheduled while its not_before is read.
        [(delay,)] = rows(
            db,
            f"SELECT s.not_before - a.update_time FROM {SCHEMA}.steps s JOIN {SCHEMA}.step_attempts a "
            "ON a.step_id = s.step_id AND a.attempt = %s WHERE s.step_id = %s",
            attempt, step.step_id,
        )
        delays.append(delay)
        worker.credit(1)
    assert delays == [timedelta(milliseconds=ms) for ms in (10, 20, 30, 30)]
    last = worker.expect("task")
    worker.fail(last, "out of retries")
    assert worker.expect("accepted").status == pb.STEP_STATUS_FAILED
    worker.cancel()


def test_the_backoff_formula_at_its_boundaries(db) -> None:
    """The SQL function itself: no coefficient is a fixed delay; a huge power stops at the cap, or
    at 100 years without one, instead of overflowing; jitter takes at most its fraction off."""

    def backoff(delay: str | None, coefficient: float | None, cap: str | None, jitter: float | None, attempt: int) -> timedelta:
        [(value,)] = rows(
            db, f"SELECT {SCHEMA}.retry_backoff(%s::interval, %s, %s::interval, %s, %s)", delay, coefficient, cap, jitter, attempt
        )
        return value

    assert backoff("5 seconds", None, None, None, 9) == timedelta(seconds=5)
    assert backoff("5 seconds", 1, None, None, 9) == timedelta(seconds=5)
    assert backoff("1 second", 3, None, None, 3) == timedelta(seconds=9)
    assert backoff("1 second", 10, "1 hour", None, 10_000) == timedelta(hours=1)
    assert backoff("1 second", 10, None, None, 10_000) == timedelta(seconds=3_155_760_000)
    assert backoff(None, 2, None, None, 5) == timedelta(0)
    assert backoff("10 seconds", 2, "15 seconds", 0, 2) == timedelta(seconds=15)
    jittered = [backoff("10 seconds", None, None, 0.25, 1) for _ in range(50)]
    assert all(timedelta(seconds=7.5) <= value <= timedelta(seconds=10) for value in jittered), jittered
    assert len(set(jittered)) > 1, "jitter is random"
    assert [backoff("10 seconds", None, None, 1, 1) <= timedelta(seconds=10) for _ in range(5)] == [True] * 5


# Timeouts.


def test_an_attempt_past_start_to_close_times_out_though_heartbeating_and_is_retried(start_server, rpc) -> None:
    server = start_server(*SWEEP)
    with grpc.insecure_channel(server.target) as channel, psycopg.connect(server.database_url, autocommit=True) as db:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        [step] = scheduled_steps(stub, rpc, 1, retries=1, start_to_close=duration(timedelta(milliseconds=300)))
        worker = TaskStream(stub)
        worker.subscribe([rpc], max_in_flight=2, task_lease=timedelta(seconds=30))
        first = worker.expect("task")
        assert first.HasField("timeout_time")
        [(running_time, timeout_time)] = rows(
            db, f"SELECT running_time, task_timeout_time FROM {server.schema}.steps WHERE step_id = %s", step.step_id
        )
        assert timeout_time - running_time == timedelta(milliseconds=300)
        assert first.timeout_time.ToDatetime(tzinfo=timeout_time.tzinfo) == timeout_time
        assert first.deadline == first.timeout_time, "the task lease never reaches past the timeout"
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(0.05):
                worker.heartbeat()

        beating = threading.Thread(target=heartbeat)
        beating.start()
        try:
            # The stream tells the worker when the attempt's time is up (its timer is set from the
            # claim, so it fires before the sweeper can have failed the attempt and woken a claim).
            cancel = worker.expect("cancel")
            second = worker.expect("task")  # the retry, handed out after the sweeper timed the first out
        finally:
            stop.set()
            beating.join()
        assert (cancel.step_id, cancel.attempt, cancel.run_id) == (step.step_id, 1, step.run_id)
        assert cancel.reason == "timed out: the attempt ran longer than its start_to_close of 0.3s"
        assert (second.step_id, second.attempt) == (step.step_id, 2)
        [attempt] = [a for a in history_of(stub, step.run_id, step.step_name) if a.attempt == 1]
        assert attempt.status == pb.STEP_STATUS_FAILED
        assert "timed out" in attempt.error.message and attempt.error.code == "START_TO_CLOSE_TIMEOUT", attempt.error
        [(failed_at,)] = rows(
            db, f"SELECT update_time FROM {server.schema}.step_attempts WHERE step_id = %s AND attempt = 1", step.step_id
        )
        assert failed_at >= timeout_time, "not failed before its timeout"
        worker.complete(first)  # too late: the attempt is over
        refused = worker.expect("refused")
        # Attempt 2 runs by now: the late report names an attempt that is not the step's current one.
        assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION.value[0], "WRONG_ATTEMPT"), refused
        assert (refused.metadata["attempt"], refused.metadata["attempt_count"]) == ("1", "2"), refused
        worker.complete(second)
        assert worker.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
        worker.cancel()


def test_a_step_nobody_claims_within_schedule_to_start_fails_without_retry(start_server, rpc) -> None:
    server = start_server(*SWEEP)
    with grpc.insecure_channel(server.target) as channel, psycopg.connect(server.database_url, autocommit=True) as db:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        [step] = scheduled_steps(stub, rpc, 1, retries=3, schedule_to_start=duration(timedelta(milliseconds=200)))
        wait_in_database(db, f"(SELECT status FROM {server.schema}.steps WHERE step_id = {{}}) = 'failed'", (step.step_id,))
        failed = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
        assert failed.attempt_count == 1, "a step that never started is not retried"
        assert "timed out" in failed.error.message and failed.error.code == "SCHEDULE_TO_START_TIMEOUT", failed.error
        [(scheduled, failed_time)] = rows(
            db, f"SELECT scheduled_time, failed_time FROM {server.schema}.steps WHERE step_id = %s", step.step_id
        )
        assert failed_time - scheduled >= timedelta(milliseconds=200)
        # A step claimed in time is not touched: a worker takes this one at once.
        worker = TaskStream(stub)
        worker.subscribe([rpc])
        [taken] = scheduled_steps(stub, rpc, 1, schedule_to_start=duration(timedelta(milliseconds=200)))
        task = worker.expect("task")
        assert task.step_id == taken.step_id
        worker.complete(task)
        assert worker.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
        worker.cancel()


# Priority.


def test_higher_priority_is_claimed_first_then_earlier_due(stub, db, rpc) -> None:
    run = new_run(stub)
    priorities = [0, 5, -1, 5, 10, 0]
    step_ids = []
    for i, priority in enumerate(priorities):
        request = pb.InsertStepStateRequest(run_id=run.run_id, step_name=f"p{i}", rpc_name=rpc, options=pb.StepOptions(priority=priority))
        step = stub.InsertStepState(request).step
        step_ids.append(stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id)).step.step_id)
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1)
    for _ in priorities:
        worker.complete(worker.expect("task"))
        worker.expect("accepted")
        worker.credit(1)
    worker.cancel()
    claimed = [row[0] for row in rows(db, f"SELECT step_name FROM {SCHEMA}.steps WHERE run_id = %s ORDER BY running_time", run.run_id)]
    assert claimed == ["p4", "p1", "p3", "p0", "p5", "p2"]


# Concurrency keys, across servers.


def max_overlap(intervals: list[tuple[Any, Any]]) -> int:
    """The most intervals open at one instant (an end and a start at the same instant do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_three_servers_and_six_workers_never_run_more_than_the_limit_of_a_key(start_server, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    servers = [start_server(*SWEEP, schema=schema) for _ in range(3)]
    channels = [grpc.insecure_channel(server.target) for server in servers]
    stubs = [pb_grpc.WorkflowStateServiceStub(channel) for channel in channels]
    set_defaults(stubs[0], rpc, concurrency_limit=2)
    keys, per_key, workers = ["k0", "k1", "k2"], 8, 6
    total = len(keys) * per_key + 6  # and a few steps without a key, never held back
    done = threading.Event()
    errors: list[BaseException] = []
    accepted: Counter[str] = Counter()
    lock = threading.Lock()
    streams = [TaskStream(stubs[i % 3]) for i in range(workers)]

    def work(index: int) -> None:
        stream = streams[index]
        try:
            stream.subscribe([rpc], max_in_flight=4, worker_id=f"w{index}")
            while not done.is_set():
                response = stream.next(timeout=60)
                if done.is_set():
                    return
                assert not isinstance(response, (grpc.RpcError, grpc.StatusCode)), f"worker {index}'s stream ended: {response!r}"
                kind = response.WhichOneof("kind")
                if kind == "task":
                    time.sleep(0.02)  # the work: long enough for the claims of one key to meet
                    stream.complete(response.task, json.dumps({"worker": index}))
                elif kind == "accepted":
                    stream.credit(1)
                    with lock:
                        accepted[response.accepted.step_id] += 1
                        if len(accepted) == total:
                            done.set()
        except BaseException as err:  # reported by the test thread
            errors.append(err)
            done.set()

    # Every step due before the workers come, so each claim finds more of a key than it may take.
    run = new_run(stubs[0])
    for i in range(per_key):
        for key in keys:
            request = pb.InsertStepStateRequest(
                run_id=run.run_id, step_name=f"{key}-{i}", rpc_name=rpc, options=pb.StepOptions(concurrency_key=key)
            )
            step = stubs[i % 3].InsertStepState(request).step
            stubs[(i + 1) % 3].SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id))
    scheduled_steps(stubs[2], rpc, 6, run_id=run.run_id)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    assert done.wait(120), f"not every step was completed: {len(accepted)} of {total}"
    for stream in streams:
        stream.cancel()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert set(accepted.values()) == {1} and len(accepted) == total
    with psycopg.connect(servers[0].database_url, autocommit=True) as db:
        found = rows(
            db, f"SELECT concurrency_key, running_time, succeeded_time, attempt_count FROM {schema}.steps WHERE run_id = %s", run.run_id
        )
    assert {row[3] for row in found} == {1}, "every step ran once"
    peaks = {key: max_overlap([(r[1], r[2]) for r in found if r[0] == key]) for key in keys}
    assert all(peak <= 2 for peak in peaks.values()), peaks
    assert max(peaks.values()) == 2, f"the limit was reached, not merely kept by running one at a time: {peaks}"
    for channel in channels:
        channel.close()


# Rate limits, across servers.


def test_a_rate_limit_is_one_token_bucket_for_every_server(start_server, rpc) -> None:
    """4 per second: the first 4 claims go at once, each later one waits for its token; two servers
    share the bucket. From the claims' running_time: any 5 consecutive claims span at least the
    time one token takes to come back (1/4 s), and the 9 claims at least 5 tokens' (1.25 s).
    (A claim stamps running_time a little after it read the bucket's clock, by as long as it
    waited for the bucket's row: the margins allow for that.)"""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    servers = [start_server(*SWEEP, schema=schema) for _ in range(2)]
    with grpc.insecure_channel(servers[0].target) as first, grpc.insecure_channel(servers[1].target) as second:
        stubs = [pb_grpc.WorkflowStateServiceStub(first), pb_grpc.WorkflowStateServiceStub(second)]
        set_defaults(stubs[1], rpc, rate_limit=4, rate_period=duration(timedelta(seconds=1)))
        workers = [TaskStream(stub) for stub in stubs]
        for worker in workers:
            worker.subscribe([rpc], max_in_flight=10, worker_id=f"w-{len(stubs)}")
        steps = scheduled_steps(stubs[0], rpc, 9)
        with psycopg.connect(servers[0].database_url, autocommit=True) as db:
            wait_in_database(db, f"(SELECT count(*) FROM {schema}.steps WHERE rpc_name = {{}} AND status = 'running') = 9", (rpc,))
            times = [row[0] for row in rows(db, f"SELECT running_time FROM {schema}.steps WHERE rpc_name = %s ORDER BY running_time", rpc)]
        assert len(times) == len(steps)
        gaps = [later - earlier for earlier, later in zip(times, times[4:], strict=False)]
        assert all(gap >= timedelta(milliseconds=200) for gap in gaps), gaps
        assert times[-1] - times[0] >= timedelta(milliseconds=1150), times
        for worker in workers:
            worker.cancel()
