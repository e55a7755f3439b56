"""Group commit of the lease statements: the acquires, keepalives, releases and reads of many Lease
streams and calls share one statement and one commit, each answered as it would be alone.

The server is told (a test-only flag) to hold operations until a group of GROUP form, so that the
operations a test sends together are grouped for certain; its metrics count the statements and
their operations (test_group_commit.py has the same for the state statements).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import grpc
import psycopg
import pytest
from psycopg import sql
from support.lease_stream import LeaseStream
from support.server_process import ServerProcess
from support.waiting import wait_in_database
from support.grouping import GROUP, group_sizes, grouping_server, waits_on

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

TTL = timedelta(seconds=60)


@pytest.fixture
def grouping(start_server: Callable[..., ServerProcess]) -> Iterator[tuple[ServerProcess, pb_grpc.WorkflowStateServiceStub]]:
    server = grouping_server(start_server)
    with grpc.insecure_channel(server.target) as channel:
        yield server, pb_grpc.WorkflowStateServiceStub(channel)


@pytest.fixture
def streams(grouping) -> Iterator[list[LeaseStream]]:
    """GROUP Lease streams on the grouping server."""
    _, stub = grouping
    opened = [LeaseStream(stub) for _ in range(GROUP)]
    yield opened
    for stream in opened:
        stream.close()


def _acquire_all(streams: list[LeaseStream], keys: list[str]) -> list[int]:
    """Each stream acquires its key (sent together: one group); the granted tokens, in order."""
    for stream, key in zip(streams, keys, strict=True):
        stream.acquire(key, TTL, timedelta(seconds=60))
    return [stream.expect("granted").fencing_token for stream in streams]


def _release_all(streams: list[LeaseStream]) -> None:
    for stream in streams:
        stream.release()
    for stream in streams:
        stream.expect("released")


def _holder_of(db: psycopg.Connection, schema: str, key: str) -> tuple[bool, int]:
    """(held now, the key's latest token) as stored."""
    query = sql.SQL("SELECT owner_id IS NOT NULL AND expire_time > now(), fencing_token FROM {} WHERE key = %s").format(
        sql.Identifier(schema, "leases")
    )
    return db.execute(query, (key,)).fetchone()


def _expire_time_of(db: psycopg.Connection, schema: str, key: str) -> datetime:
    query = sql.SQL("SELECT expire_time FROM {} WHERE key = %s").format(sql.Identifier(schema, "leases"))
    return db.execute(query, (key,)).fetchone()[0]


def test_acquires_keepalives_releases_and_reads_of_many_streams_share_one_statement_each(grouping, streams, db, unique) -> None:
    server, stub = grouping
    keys = [f"group:{unique}:{index}" for index in range(GROUP)]
    # Keys never leased before: each gets its row, and the first token.
    assert _acquire_all(streams, keys) == [1] * GROUP
    for stream in streams:
        stream.keep_alive()
    kept = [stream.expect("kept_alive").expire_time.ToDatetime(tzinfo=timezone.utc) for stream in streams]
    assert kept == [_expire_time_of(db, server.schema, key) for key in keys]
    futures = [stub.GetLease.future(pb.GetLeaseRequest(key=key)) for key in keys]
    assert [future.result(timeout=60).lease.key for future in futures] == keys
    _release_all(streams)
    assert [_holder_of(db, server.schema, key) for key in keys] == [(False, 1)] * GROUP
    # Each kind of operation: one statement for the GROUP of them.
    for statement in ("lease_acquire", "lease_keep_alive", "lease_get", "lease_release"):
        assert group_sizes(server, statement) == {"statements": 1, "operations": GROUP, "of 2 or more": 1, f"of {GROUP} or more": 1}, statement


def _lock_lease_row(holder: psycopg.Connection, schema: str, key: str) -> None:
    """Share-lock the key's lease row in the holder's open transaction, as a fenced write in flight does."""
    holder.execute(sql.SQL("SELECT FROM {} WHERE key = %s FOR SHARE").format(sql.Identifier(schema, "leases")), (key,))


@pytest.mark.parametrize("operation", ["acquire", "keep_alive", "release"])
def test_a_group_commits_at_once_around_a_lease_row_another_transaction_locked(grouping, streams, db, unique, operation: str) -> None:
    server, _ = grouping
    keys = [f"locked:{unique}:{index}" for index in range(GROUP)]
    tokens = _acquire_all(streams, keys)
    if operation == "acquire":
        _release_all(streams)  # the keys' rows exist, free: the acquires below take them over
    answer = {"acquire": "granted", "keep_alive": "kept_alive", "release": "released"}[operation]
    with psycopg.connect(db.info.dsn) as holder:  # a transaction of its own, open until the block ends
        _lock_lease_row(holder, server.schema, keys[0])
        for stream, key in zip(streams, keys, strict=True):
            if operation == "acquire":
                stream.acquire(key, TTL, timedelta(seconds=60))
            else:
                getattr(stream, operation)()
        # The other keys are answered, and committed, while the lock is still held...
        for stream in streams[1:]:
            stream.expect(answer)
        expected_held = operation != "release"
        assert [_holder_of(db, server.schema, key)[0] for key in keys[1:]] == [expected_held] * (GROUP - 1)
        # ...and the locked key's operation waits for the lock alone, as a statement of its own would.
        wait_in_database(db, waits_on(holder))
        assert not streams[0].answered()
    done = streams[0].expect(answer)
    if operation == "acquire":
        assert done.fencing_token == tokens[0] + 1
    assert _holder_of(db, server.schema, keys[0])[0] == expected_held
    # One statement held the whole group; the locked key's operation then ran alone.
    statement = f"lease_{operation}"
    before = GROUP if operation == "acquire" else 0  # the acquires that made the keys' rows
    assert group_sizes(server, statement) == {
        "statements": 2 + (1 if before else 0),
        "operations": before + GROUP + 1,
        "of 2 or more": 1 + (1 if before else 0),
        f"of {GROUP} or more": 1 + (1 if before else 0),
    }
