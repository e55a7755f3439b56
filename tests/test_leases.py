"""Leases over real servers and a real PostgreSQL: exclusion, tokens, expiry, crashes, order,
bad input, shutdown, and the fencing of state writes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import psycopg
import pytest
from psycopg import sql
from support.flows import new_run, new_step, reason_of, refusal_of, status_of
from support.lease_stream import LeaseStream, duration
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

TEN_S = timedelta(seconds=10)
LONG_WAIT = timedelta(seconds=60)
EXPIRED = pb.LEASE_LOST_REASON_EXPIRED


def _stub(target: str) -> tuple[grpc.Channel, pb_grpc.WorkflowStateServiceStub]:
    channel = grpc.insecure_channel(target)
    return channel, pb_grpc.WorkflowStateServiceStub(channel)


def _waiters_queued(db: psycopg.Connection, schema: str, key: str, count: int) -> None:
    table = sql.Identifier(schema, "lease_waiters").as_string(db)
    wait_in_database(db, f"(SELECT count(*) FROM {table} WHERE key = {{}}) >= {{}}", (key, count))


class ExclusionLog:
    """What the critical sections saw: overlaps, tokens in order, cycles done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inside: dict[str, int] = defaultdict(int)
        self.overlaps = 0
        self.tokens: dict[str, list[int]] = defaultdict(list)
        self.cycles = 0

    def enter(self, key: str, token: int) -> None:
        with self._lock:
            self.inside[key] += 1
            self.overlaps += self.inside[key] > 1
            self.tokens[key].append(token)

    def leave(self, key: str) -> None:
        with self._lock:
            self.inside[key] -= 1
            self.cycles += 1


def _contend(targets: list[str], runs: list[pb.Run], workers: int, cycles: int) -> ExclusionLog:
    """workers threads, each with one stream to one of the servers, each doing `cycles` lock
    cycles over the runs' keys, writing a fenced step inside each critical section."""
    log = ExclusionLog()
    failures: list[BaseException] = []
    channels = [_stub(target) for target in targets]

    def work(worker: int) -> None:
        _, stub = channels[worker % len(channels)]
        stream = LeaseStream(stub)
        try:
            for cycle in range(cycles):
                run = runs[(worker + cycle) % len(runs)]
                key = f"run:{run.run_id}"
                stream.acquire(key, TEN_S, LONG_WAIT, holder=f"worker-{worker}")
                token = stream.expect("granted").fencing_token
                log.enter(key, token)
                request = pb.InsertStepStateRequest(
                    run_id=run.run_id, step_name=f"w{worker}-c{cycle}", rpc_name="r", fencing_token=token
                )
                stub.InsertStepState(request)  # the run's key is the default lease key
                log.leave(key)
                stream.release()
                stream.expect("released")
        except BaseException as err:  # reported by the test below
            failures.append(err)
        finally:
            stream.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for channel, _ in channels:
        channel.close()
    assert not failures, failures
    return log


def _assert_exclusive(log: ExclusionLog, stub, runs: list[pb.Run], expected_cycles: int) -> None:
    assert log.cycles == expected_cycles
    assert log.overlaps == 0
    for key, tokens in log.tokens.items():
        assert all(a < b for a, b in zip(tokens, tokens[1:], strict=False)), (key, tokens)
    # Every fenced write of every cycle landed, once.
    written = sum(len(stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts) for run in runs)
    assert written == expected_cycles


def test_mutual_exclusion_under_contention(stub, server_target) -> None:
    runs = [new_run(stub) for _ in range(3)]
    log = _contend([server_target], runs, workers=8, cycles=12)
    _assert_exclusive(log, stub, runs, 8 * 12)


def test_two_replicas_on_one_database_exclude_each_other(start_server, unique) -> None:
    schema = f"replicas_{unique}"
    first, second = start_server(schema=schema), start_server(schema=schema)
    channel, stub = _stub(first.target)
    with channel:
        runs = [new_run(stub) for _ in range(2)]
        log = _contend([first.target, second.target], runs, workers=8, cycles=10)
        _assert_exclusive(log, stub, runs, 8 * 10)


def test_expired_holder_loses_and_its_write_is_fenced_off(stub, db) -> None:
    run = new_run(stub)
    key = f"run:{run.run_id}"
    old = LeaseStream(stub)
    old.acquire(key, timedelta(seconds=1))
    old_token = old.expect("granted").fencing_token
    waiter = LeaseStream(stub)
    waiter.acquire(key, TEN_S, LONG_WAIT)
    # The old holder sends no keepalive: it is told it lost the lease, and the waiter gets it.
    assert old.expect("lost").reason == EXPIRED
    new_token = waiter.expect("granted").fencing_token
    assert new_token > old_token

    stale = pb.InsertStepStateRequest(run_id=run.run_id, step_name="stale", rpc_name="r", fencing_token=old_token)
    code, reason, _, details = reason_of(stub.InsertStepState, stale)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCE")
    assert (details["fence_token"], details["current_token"]) == (str(old_token), str(new_token))
    assert list(stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts) == []
    # A keepalive from the old holder is answered: still lost.
    old.keep_alive()
    assert old.expect("lost").reason == EXPIRED

    fresh = pb.InsertStepStateRequest(run_id=run.run_id, step_name="fresh", rpc_name="r", fencing_token=new_token)
    assert stub.InsertStepState(fresh).step.step_name == "fresh"
    stored = db.execute("SELECT fencing_token FROM workflows_test.steps WHERE run_id = %s", (run.run_id,)).fetchone()
    assert stored == (new_token,)
    old.close()
    waiter.close()


def test_keepalive_keeps_the_lease(stub, unique) -> None:
    holder = LeaseStream(stub)
    holder.acquire(unique, timedelta(seconds=1))
    first = holder.expect("granted")
    for _ in range(3):
        holder.keep_alive()
        kept = holder.expect("kept_alive")
        assert kept.expire_time.ToDatetime() >= first.expire_time.ToDatetime()
    lease = stub.GetLease(pb.GetLeaseRequest(key=unique)).lease
    assert (lease.fencing_token, lease.holder) == (first.fencing_token, "test")
    holder.release()
    holder.expect("released")
    code, _ = status_of(stub.GetLease, pb.GetLeaseRequest(key=unique))
    assert code == grpc.StatusCode.NOT_FOUND


HOLDER_SCRIPT = """
import sys, time
import grpc
from google.protobuf.duration_pb2 import Duration
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as g
stub = g.WorkflowStateServiceStub(grpc.insecure_channel(sys.argv[1]))
requests = iter([pb.LeaseRequest(acquire=pb.LeaseAcquire(key=sys.argv[2], ttl=Duration(seconds=120)))])
def hold():
    yield next(requests)
    time.sleep(600)  # keep the stream open: this process is killed long before
for response in stub.Lease(hold()):
    print("held", response.granted.fencing_token, flush=True)
"""


def test_killed_client_frees_the_lease_without_waiting_for_the_ttl(stub, server_target, unique) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, server_target, unique], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().startswith("held")
        waiter = LeaseStream(stub)
        # Far less than the holder's ttl of 120 s: only the end of its stream can free the key.
        waiter.acquire(unique, TEN_S, timedelta(seconds=30))
        holder.kill()
        waiter.expect("granted")
        waiter.close()
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()


def test_killed_server_frees_the_lease_at_the_ttl_for_a_replica(start_server, unique) -> None:
    schema = f"crash_{unique}"
    doomed, survivor = start_server(schema=schema), start_server(schema=schema)
    doomed_channel, doomed_stub = _stub(doomed.target)
    channel, stub = _stub(survivor.target)
    with doomed_channel, channel:
        holder = LeaseStream(doomed_stub)
        holder.acquire(unique, timedelta(seconds=2))
        old_token = holder.expect("granted").fencing_token
        waiter = LeaseStream(stub)
        waiter.acquire(unique, TEN_S, timedelta(seconds=30))
        doomed.kill()  # SIGKILL: no release, no goodbye
        granted = waiter.expect("granted")
        assert granted.fencing_token > old_token
        holder.expect_end(grpc.StatusCode.UNAVAILABLE)
        waiter.close()


@pytest.mark.parametrize("replicas", [1, 2])
def test_waiters_are_served_first_come_first_served(start_server, db, unique, replicas: int) -> None:
    schema = f"fifo_{unique}"
    servers = [start_server(schema=schema) for _ in range(replicas)]
    channels = [_stub(server.target) for server in servers]
    holder = LeaseStream(channels[0][1])
    holder.acquire(unique, TEN_S)
    holder.expect("granted")
    waiters = []
    for n in range(5):
        waiter = LeaseStream(channels[n % replicas][1])
        waiter.acquire(unique, TEN_S, LONG_WAIT, holder=f"waiter-{n}")
        _waiters_queued(db, schema, unique, n + 1)  # queued before the next one asks
        waiters.append(waiter)
    holder.release()
    holder.expect("released")
    tokens = []
    for waiter in waiters:  # each must be granted in turn; a grant out of order would stall here
        tokens.append(waiter.expect("granted").fencing_token)
        waiter.release()
        waiter.expect("released")
    assert tokens == sorted(tokens)
    for stream in [holder, *waiters]:
        stream.close()
    for channel, _ in channels:
        channel.close()


def test_wait_timeout_and_try_once_end_with_deadline_exceeded(stub, unique) -> None:
    holder = LeaseStream(stub)
    holder.acquire(unique, TEN_S)
    holder.expect("granted")
    patient = LeaseStream(stub)
    patient.acquire(unique, TEN_S, timedelta(milliseconds=300))
    assert unique in patient.expect_end(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
    once = LeaseStream(stub)
    once.acquire(unique, TEN_S, timedelta(0))
    assert "tried once" in once.expect_end(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
    # Neither left a place in the queue behind: the next try-once after release succeeds.
    holder.release()
    holder.expect("released")
    again = LeaseStream(stub)
    again.acquire(unique, TEN_S, timedelta(0))
    again.expect("granted")
    for stream in (holder, again):
        stream.close()


def test_release_then_acquire_again_on_one_stream(stub, unique) -> None:
    stream = LeaseStream(stub)
    tokens = []
    for key in (unique, unique, unique + "-other", unique):
        stream.acquire(key, TEN_S, timedelta(0))
        granted = stream.expect("granted")
        assert granted.key == key
        tokens.append(granted.fencing_token)
        stream.release()
        stream.expect("released")
    assert tokens[0] < tokens[1] < tokens[3]
    stream.close()


def test_release_while_waiting_stops_waiting(stub, unique) -> None:
    holder = LeaseStream(stub)
    holder.acquire(unique, TEN_S)
    holder.expect("granted")
    waiter = LeaseStream(stub)
    waiter.acquire(unique, TEN_S, LONG_WAIT)
    waiter.release()
    waiter.expect("released")
    # The stream is idle again and can ask for another key at once.
    waiter.acquire(unique + "-free", TEN_S, timedelta(0))
    waiter.expect("granted")
    for stream in (holder, waiter):
        stream.close()


# The waiter rows' own ttl (LeaseSettings.waiter_ttl) and the lease poll interval, both defaults.
WAITER_TTL = 10.0
POLL_INTERVAL = 1.0


def _server_id(process: ServerProcess) -> str:
    """The server's id, from its "started" log line (its lease waiter rows carry it)."""
    for line in process.log_text().splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("msg") == "started":
            return str(record["server_id"])
    raise AssertionError("the server logged no start")


def test_a_waiter_row_nobody_waits_on_expires_at_its_ttl_while_its_server_refreshes_its_other_waiters(
    start_server, db, unique
) -> None:
    """The row a waiter leaves when its clean-up fails (the database was away) holds up the key
    only until its waiter_ttl: its server keeps refreshing the waiters still waiting, not this one."""
    server = start_server()
    schema = server.schema
    channel, stub = _stub(server.target)
    with channel:
        holder = LeaseStream(stub)
        holder.acquire(unique, TEN_S)
        holder.expect("granted")
        table = sql.Identifier(schema, "lease_waiters")
        # A place in the queue with no waiter behind it: what a failed clean-up leaves.
        db.execute(
            sql.SQL("INSERT INTO {} (key, owner_id, server_id, expire_time) VALUES (%s, gen_random_uuid(), %s, now() + %s)").format(table),
            (unique, _server_id(server), timedelta(seconds=WAITER_TTL)),
        )
        waiter = LeaseStream(stub)
        # The stranded row is gone at its ttl; the waiter then looks again within the poll interval.
        waiter.acquire(unique, TEN_S, timedelta(seconds=WAITER_TTL + POLL_INTERVAL + 1.0))
        _waiters_queued(db, schema, unique, 2)
        holder.release()
        holder.expect("released")
        waiter.expect("granted")
        for stream in (holder, waiter):
            stream.close()


@pytest.mark.parametrize(
    ("acquire", "field"),
    [
        ({"key": "", "ttl": duration(TEN_S)}, "acquire.key"),
        ({"key": "k" * 1025, "ttl": duration(TEN_S)}, "acquire.key"),
        ({"key": "k"}, "acquire.ttl"),
        ({"key": "k", "ttl": duration(timedelta(0))}, "acquire.ttl"),
        ({"key": "k", "ttl": duration(timedelta(seconds=-1))}, "acquire.ttl"),
        ({"key": "k", "ttl": duration(timedelta(hours=1))}, "acquire.ttl"),
        ({"key": "k", "ttl": duration(TEN_S), "wait_timeout": duration(timedelta(seconds=-1))}, "acquire.wait_timeout"),
        ({"key": "k", "ttl": duration(TEN_S), "holder": "h" * 257}, "acquire.holder"),
    ],
)
def test_bad_acquire_is_invalid_argument(stub, acquire: dict, field: str) -> None:
    stream = LeaseStream(stub)
    stream.send(pb.LeaseRequest(acquire=pb.LeaseAcquire(**acquire)))
    assert field in stream.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", metadata={"field": field})


def test_messages_out_of_order_are_failed_precondition(stub, unique) -> None:
    early = LeaseStream(stub)
    early.keep_alive()
    assert "acquire" in early.expect_end(grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION")

    twice = LeaseStream(stub)
    twice.acquire(unique, TEN_S)
    twice.expect("granted")
    twice.acquire(unique + "-2", TEN_S)
    assert "release it first" in twice.expect_end(grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION")
    # The stream ended, so its lease was released at once.
    code, _ = status_of(stub.GetLease, pb.GetLeaseRequest(key=unique))
    assert code == grpc.StatusCode.NOT_FOUND

    empty = LeaseStream(stub)
    empty.send(pb.LeaseRequest())
    empty.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_graceful_shutdown_tells_holders_and_frees_their_keys(start_server, unique) -> None:
    schema = f"shutdown_{unique}"
    stopping, staying = start_server(schema=schema), start_server(schema=schema)
    stopping_channel, stopping_stub = _stub(stopping.target)
    channel, stub = _stub(staying.target)
    with stopping_channel, channel:
        holder = LeaseStream(stopping_stub)
        holder.acquire(unique, timedelta(seconds=120))
        holder.expect("granted")
        assert stopping.stop() == 0
        assert holder.expect("lost").reason == pb.LEASE_LOST_REASON_SERVER_SHUTDOWN
        holder.expect_end(grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
        # Released at shutdown, not at the ttl: the other server has it free at once.
        code, _ = status_of(stub.GetLease, pb.GetLeaseRequest(key=unique))
        assert code == grpc.StatusCode.NOT_FOUND


def test_keys_that_collide_under_a_32_bit_hash_do_not_block_each_other(stub, db) -> None:
    row = db.execute(
        "SELECT min(k), max(k) FROM (SELECT 'run:' || g AS k FROM generate_series(1, 300000) g) keys "
        "GROUP BY hashtext(k) HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    first, second = row
    assert first != second
    assert db.execute("SELECT hashtext(%s) = hashtext(%s)", (first, second)).fetchone()[0]
    a, b = LeaseStream(stub), LeaseStream(stub)
    a.acquire(first, TEN_S, timedelta(0))
    a.expect("granted")
    b.acquire(second, TEN_S, timedelta(0))
    b.expect("granted")
    for stream in (a, b):
        stream.close()


def _hold(stub, key: str) -> tuple[LeaseStream, int]:
    stream = LeaseStream(stub)
    stream.acquire(key, TEN_S, timedelta(0))
    return stream, stream.expect("granted").fencing_token


def test_fenced_step_writes_with_a_step_key(stub, db) -> None:
    run = new_run(stub)
    step = new_step(stub, run.run_id, "charge")
    key = f"step:{run.run_id}:charge"
    stream, token = _hold(stub, key)
    running = stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id, fencing_token=token, lease_key=key)).step
    assert running.status == pb.STEP_STATUS_RUNNING
    stream.release()
    stream.expect("released")
    stream.acquire(key, TEN_S, timedelta(0))
    newer = stream.expect("granted").fencing_token

    writes: list[tuple[Callable[[Any], Any], Any]] = [
        (stub.SetStepRunning, pb.SetStepRunningRequest(step_id=step.step_id, fencing_token=token, lease_key=key)),
        (stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json="1", fencing_token=token, lease_key=key)),
        (stub.SetStepError, pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="x"), fencing_token=token, lease_key=key)),
    ]
    for call, request in writes:  # even the no-op repeat of RUNNING is refused to a stale holder
        code, reason, _, details = reason_of(call, request)
        assert (code, reason, details["fence_token"]) == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCE", str(token))
    after = stub.GetStepState(pb.GetStepStateRequest(run_id=run.run_id, step_name="charge")).step
    assert after == running
    done = stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json="1", fencing_token=newer, lease_key=key))
    assert done.step.status == pb.STEP_STATUS_SUCCEEDED
    assert db.execute("SELECT fencing_token FROM workflows_test.steps WHERE step_id = %s", (step.step_id,)).fetchone() == (newer,)
    stream.close()


def test_fenced_run_writes_and_retry_attempts(stub) -> None:
    run = new_run(stub)
    step = new_step(stub, run.run_id, "s")
    stub.SetStepError(pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="boom")))
    stream, token = _hold(stub, f"run:{run.run_id}")
    retried = stub.CreateRetryAttempt(
        pb.CreateRetryAttemptRequest(step_id=step.step_id, status=pb.STEP_STATUS_PENDING, fencing_token=token)
    )
    assert retried.step.attempt_count == 2
    scheduled = stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id, fencing_token=token)).step
    assert scheduled.status == pb.STEP_STATUS_SCHEDULED
    code, reason, _, _ = reason_of(
        stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, fencing_token=token + 1)
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCE")
    done = stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, fencing_token=token))
    assert done.run.status == pb.RUN_STATUS_COMPLETED
    stream.close()


def test_fencing_input_errors(stub, unique) -> None:
    run = new_run(stub)
    cases = [
        (pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, lease_key="run:x"), grpc.StatusCode.INVALID_ARGUMENT, "fencing_token"),
        (pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, fencing_token=0), grpc.StatusCode.INVALID_ARGUMENT, "fencing_token"),
        (pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, fencing_token=7, lease_key=unique), grpc.StatusCode.FAILED_PRECONDITION, "no lease was ever granted"),
    ]  # fmt: skip
    for request, expected, words in cases:
        refused = refusal_of(stub.UpdateRunStatus, request)
        assert refused.code == expected and words in refused.message, refused
        assert refused.reason == ("UNKNOWN_FENCE" if expected == grpc.StatusCode.FAILED_PRECONDITION else "INVALID_ARGUMENT"), refused
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == pb.RUN_STATUS_RUNNING


def test_get_lease_of_a_free_or_bad_key(stub, unique) -> None:
    assert reason_of(stub.GetLease, pb.GetLeaseRequest(key=unique))[:2] == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    assert reason_of(stub.GetLease, pb.GetLeaseRequest(key=""))[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
