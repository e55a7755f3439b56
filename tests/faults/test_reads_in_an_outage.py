"""Reads whose statement was running when a database outage cut its connection: their UNAVAILABLE
says nothing was written.

A write in that spot cannot know whether PostgreSQL committed it, and says "its outcome is unknown:
it may have been applied". A read (declared NO_SIDE_EFFECTS in the proto) changed nothing whatever
became of its statement, so a program reading the ErrorInfo's outcome must not go and read the
state back for nothing. Each read here is held in its statement by a table lock, then PostgreSQL
stops (fast: every connection ends), so the connection dies while the statement runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest
from support.controllable_postgres import ControllablePostgres
from support.error_info import error_info_of
from support.flows import new_run
from support.waiting import SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

Stub = pb_grpc.WorkflowStateServiceStub
SCHEMA = "read_outage"


def _watch_run(stub: Stub, run_id: str) -> None:
    for _ in stub.WatchRun(pb.WatchRunRequest(run_id=run_id)):
        pass


def _stream_run_events(stub: Stub, run_id: str) -> None:
    for _ in stub.StreamRunEvents(pb.StreamRunEventsRequest()):
        pass


def _get_run(stub: Stub, run_id: str) -> None:
    stub.GetRun(pb.GetRunRequest(run_id=run_id))


@pytest.mark.parametrize("read", [_watch_run, _stream_run_events, _get_run], ids=["WatchRun", "StreamRunEvents", "GetRun"])
def test_a_read_cut_off_by_an_outage_mid_statement_says_nothing_was_written(
    postgres: ControllablePostgres, serve, read: Callable[[Stub, str], None]
) -> None:
    server = serve(SCHEMA)
    ended: list[grpc.RpcError] = []
    with grpc.insecure_channel(server.target) as channel:
        stub = Stub(channel)
        run = new_run(stub)

        def call() -> None:
            try:
                read(stub, run.run_id)
            except grpc.RpcError as err:
                ended.append(err)

        # Closed, not left by a `with`: the stop ends its transaction, and a `with` would try to commit it.
        holder = postgres.connect()
        try:
            holder.execute("BEGIN")  # the lock is held until the stop ends the connection
            holder.execute(f"LOCK TABLE {SCHEMA}.runs, {SCHEMA}.run_events IN ACCESS EXCLUSIVE MODE")
            reader = threading.Thread(target=call)
            reader.start()
            wait_in_database(holder, SOMEONE_WAITS_FOR_A_LOCK)
            postgres.stop("fast")
            reader.join(60)
        finally:
            holder.close()
            if not postgres.running():
                postgres.start()
    [err] = ended
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    reason, _, metadata = error_info_of(err)
    assert (reason, metadata.get("outcome")) == ("UNAVAILABLE", "nothing_written"), err.details()
    assert "nothing was written" in err.details()
    assert "may have been applied" not in err.details()
