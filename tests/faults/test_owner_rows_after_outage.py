"""Rows the server keeps for an owner outlive it by no more than a bound after a database outage.

Leases (the liveness property of the README's lease section): a waiter queued on a held key when PostgreSQL goes away (a fast restart, or stopped for 5 s) has
its acquire fail with UNAVAILABLE, and the clean-up of its place in the queue fails too, since the
database is still away. Once PostgreSQL is back, a new acquire on the key whose holder is gone
must be granted within the holder's ttl plus LIVENESS_BOUND: on the same server, and on another
replica while the first server keeps other waiters of its own (whose refreshes must not keep the
stranded waiter's row alive).

Likewise a lease holder and a worker stream that end while the database is away: once it is back,
the key is free and ListWorkers stops showing the stream within the bound, not at their ttl.

To make the stranded waiter's try fail deterministically, the test locks the key's lease row so
that the waiter's retry is in flight, waiting for the lock, when PostgreSQL stops.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import timedelta

import grpc
import pytest
from psycopg import sql
from support.controllable_postgres import ControllablePostgres
from support.faults_servers import NOT_SERVING, SERVING
from support.health_watch import HealthWatch
from support.lease_stream import LeaseStream
from support.polling import wait_until
from support.server_process import ServerProcess
from support.task_stream import TaskStream
from support.waiting import SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate.client import WorkflowStateClient
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SCHEMA = "lease_outage"
SERVER_ARGS = ("--health-interval", "0.2", "--pool-timeout", "1", "--grace-period", "10")
# The lease and dispatch poll intervals the servers run with (the defaults).
POLL_INTERVAL = 1.0
# The liveness bound (README, Leases and fencing): once PostgreSQL is back, a failed clean-up is
# tried again within one poll interval, and the waiter looks again within another; add health's
# recovery probe (0.25 s) and the statements' time on a loaded 2-core machine.
LIVENESS_BOUND = 2 * POLL_INTERVAL + 1.0
# The holder's ttl: long enough that it is still held when the outage is over, so the new acquirer
# queues (and its server refreshes its waiters) before the key is free.
HOLDER_TTL = timedelta(seconds=20)
OUTAGE = 5.0
LONG_WAIT = timedelta(seconds=60)


@pytest.fixture
def servers(serve) -> list[ServerProcess]:
    """Two replicas on the one PostgreSQL and schema (the first is created first: it migrates)."""
    first = serve(SCHEMA, *SERVER_ARGS)
    return [first, serve(SCHEMA, *SERVER_ARGS)]


class Replica:
    """A channel, a stub and a health watch on one server."""

    def __init__(self, process: ServerProcess, stack: ExitStack) -> None:
        self.process = process
        channel = stack.enter_context(grpc.insecure_channel(process.target))
        self.stub = pb_grpc.WorkflowStateServiceStub(channel)
        self.health = HealthWatch(process.target)
        stack.callback(self.health.close)

    def stream(self, stack: ExitStack) -> LeaseStream:
        stream = LeaseStream(self.stub)
        stack.callback(stream.cancel)
        return stream


def _tickets(postgres: ControllablePostgres, key: str) -> list[int]:
    """The tickets of the key's waiter rows, live or not."""
    with postgres.connect() as conn:
        query = sql.SQL("SELECT ticket FROM {} WHERE key = %s ORDER BY ticket").format(sql.Identifier(SCHEMA, "lease_waiters"))
        return [ticket for (ticket,) in conn.execute(query, (key,))]


def _strand_a_waiter(
    postgres: ControllablePostgres, replicas: list[Replica], replica: Replica, key: str, stack: ExitStack, *, down_for: float
) -> None:
    """Queue a waiter on the held key through replica; take PostgreSQL away while its retry runs;
    see its acquire fail and its clean-up fail; bring PostgreSQL back after down_for seconds, and
    wait until every replica serves again."""
    waiter = replica.stream(stack)
    waiter.acquire(key, timedelta(seconds=10), LONG_WAIT, holder="stranded")
    wait_until(lambda: len(_tickets(postgres, key)) == 1, "the waiter queued")
    [stranded] = _tickets(postgres, key)
    locker = postgres.connect()
    stack.callback(locker.close)  # not its context: that would commit on a connection the stop ended
    locker.execute("BEGIN")
    locker.execute(sql.SQL("SELECT FROM {} WHERE key = %s FOR UPDATE").format(sql.Identifier(SCHEMA, "leases")), (key,))
    wait_in_database(locker, SOMEONE_WAITS_FOR_A_LOCK)  # the waiter's retry (at its poll) waits for the row

    stopped_at = time.monotonic()
    postgres.stop("fast")
    assert waiter.expect_end(grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")
    wait_until(lambda: "lease clean-up failed" in replica.process.log_text(), "the waiter's clean-up failed")
    time.sleep(down_for)  # the outage itself: PostgreSQL stays away this long
    postgres.start()
    _serving_again(replicas, stopped_at)
    # The failed clean-up is done once the database is back, not left to the row's ttl.
    wait_until(lambda: stranded not in _tickets(postgres, key), "the stranded waiter's row deleted", timeout=LIVENESS_BOUND)


def _serving_again(replicas: list[Replica], stopped_at: float) -> None:
    for watched in replicas:
        down = watched.health.wait_for(NOT_SERVING, after=stopped_at, timeout=30)
        watched.health.wait_for(SERVING, after=down, timeout=30)


def _connect(servers: list[ServerProcess], stack: ExitStack) -> list[Replica]:
    replicas = [Replica(process, stack) for process in servers]
    for replica in replicas:
        replica.health.wait_for(SERVING, after=0, timeout=30)
    return replicas


def _hold(replica: Replica, key: str, ttl: timedelta, stack: ExitStack) -> tuple[int, float]:
    """A holder that sends no keepalive (it is gone once its ttl passes): its token, and when
    (on this clock, an upper bound of the server's) its lease ends."""
    holder = replica.stream(stack)
    holder.acquire(key, ttl, holder="gone-at-ttl")
    token = holder.expect("granted").fencing_token
    return token, time.monotonic() + ttl.total_seconds()


def _granted_within(replica: Replica, key: str, ends: float, stack: ExitStack) -> int:
    """Acquire key through replica, waiting until `ends` (when the holder is gone) plus the
    liveness bound; the token."""
    acquirer = replica.stream(stack)
    wait = max(ends - time.monotonic(), 0.0) + LIVENESS_BOUND
    acquirer.acquire(key, timedelta(seconds=10), timedelta(seconds=wait), holder="after-the-outage")
    token = acquirer.expect("granted", timeout=wait + 30).fencing_token
    print(f"\ngranted {time.monotonic() - ends:+.2f}s after the holder was gone (bound {LIVENESS_BOUND:g}s)")
    return token


@pytest.mark.parametrize("down_for", [0.0, OUTAGE], ids=["restart", "5s-outage"])
def test_after_an_outage_that_stranded_a_waiter_the_key_is_granted_within_the_ttl_plus_the_bound(
    postgres: ControllablePostgres, servers: list[ServerProcess], down_for: float
) -> None:
    key = "outage-key"
    with ExitStack() as stack:
        replicas = _connect(servers, stack)
        replica = replicas[0]
        holder_token, holder_ends = _hold(replica, key, HOLDER_TTL, stack)
        _strand_a_waiter(postgres, replicas, replica, key, stack, down_for=down_for)
        assert _granted_within(replica, key, holder_ends, stack) > holder_token


@pytest.mark.parametrize("down_for", [0.0, OUTAGE], ids=["restart", "5s-outage"])
def test_after_an_outage_a_waiter_stranded_on_one_replica_does_not_block_an_acquire_on_another(
    postgres: ControllablePostgres, servers: list[ServerProcess], down_for: float
) -> None:
    key, other_key = "outage-key", "other-key"
    with ExitStack() as stack:
        replicas = _connect(servers, stack)
        stranded_on, acquire_on = replicas
        holder_token, holder_ends = _hold(acquire_on, key, HOLDER_TTL, stack)
        _hold(stranded_on, other_key, timedelta(seconds=120), stack)
        _strand_a_waiter(postgres, replicas, stranded_on, key, stack, down_for=down_for)
        # The stranded waiter's server has waiters of its own after the outage, and refreshes them.
        stranded_on.stream(stack).acquire(other_key, timedelta(seconds=10), LONG_WAIT, holder="still-waiting")
        wait_until(lambda: len(_tickets(postgres, other_key)) == 1, "a waiter on the first replica")
        assert _granted_within(acquire_on, key, holder_ends, stack) > holder_token


def test_a_holder_that_left_during_an_outage_frees_its_key_once_the_database_is_back_not_at_its_ttl(
    postgres: ControllablePostgres, servers: list[ServerProcess]
) -> None:
    key = "left-key"
    with ExitStack() as stack:
        replicas = _connect(servers, stack)
        replica = replicas[0]
        holder = replica.stream(stack)
        holder.acquire(key, timedelta(seconds=120), holder="leaves-during-the-outage")
        holder_token = holder.expect("granted").fencing_token

        stopped_at = time.monotonic()
        postgres.stop("fast")
        holder.close()  # the holder is done: its stream ends while the release cannot be written
        assert holder.next() == grpc.StatusCode.OK  # sent once the server tried to release (in vain)
        postgres.start()
        _serving_again(replicas, stopped_at)
        # The holder is gone since the outage: the key is free within the bound, not at its ttl.
        assert _granted_within(replicas[1], key, time.monotonic(), stack) > holder_token


def test_a_worker_stream_that_ended_during_an_outage_leaves_list_workers_once_the_database_is_back(
    postgres: ControllablePostgres, servers: list[ServerProcess]
) -> None:
    with ExitStack() as stack:
        replicas = _connect(servers, stack)
        worker = TaskStream(replicas[0].stub)
        stack.callback(worker.cancel)
        worker.subscribe(["outage-rpc"], worker_id="leaves-during-the-outage", task_lease=timedelta(seconds=120))
        client = stack.enter_context(WorkflowStateClient(replicas[1].process.target))
        assert [listed.worker_id for listed in client.list_workers()] == ["leaves-during-the-outage"]

        stopped_at = time.monotonic()
        postgres.stop("fast")
        worker.close()
        # Ended by the worker, or by the server when its look for due steps found the database away:
        # either way its row could not be deleted then.
        ended = worker.next()
        assert ended == grpc.StatusCode.OK or ended.code() == grpc.StatusCode.UNAVAILABLE, ended
        postgres.start()
        _serving_again(replicas, stopped_at)
        # Its removal is retried within the dispatch poll interval (plus health's recovery probe and
        # a loaded machine's margin), not left until its task lease of 120 s has passed.
        wait_until(lambda: client.list_workers() == [], "the ended stream gone from ListWorkers", timeout=POLL_INTERVAL + 1.0)
