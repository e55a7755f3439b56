"""Deadlines under lock contention: a call answered DEADLINE_EXCEEDED wrote nothing, also after
the lock it waited for is released.

10 concurrent SetStepRunning calls with a 1 s deadline wait on step rows another transaction holds
FOR UPDATE. Every call is answered DEADLINE_EXCEEDED; then the lock goes away, and once nothing of
the server's runs in PostgreSQL any more, no step is RUNNING and no row of the run changed.

The server reaches PostgreSQL over TCP through a loopback proxy, a network hop as in production:
a cancel request then takes long enough that a second cancellation could cut it short, which is
how such writes were applied after their DEADLINE_EXCEEDED.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import psycopg
import pytest
from psycopg import sql
from support.flows import error_info_of, new_run, new_step
from support.tcp_proxy import CuttableProxy
from support.waiting import NOBODY_WAITS_FOR_A_LOCK, SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

CALLS = 10
DEADLINE = 1.0


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    hop = CuttableProxy(database_url).start()
    yield hop
    hop.close()


def _run_rows(db: psycopg.Connection, schema: str, run_id: str) -> dict[str, Any]:
    """Everything stored about the run: its steps, their attempts (the history) and its events."""

    def rows(table: str, order: str) -> list[Any]:
        query = sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE run_id = %s ORDER BY {}").format(
            sql.Identifier(schema, table), sql.SQL(order)
        )
        return [row[0] for row in db.execute(query, (run_id,))]

    return {
        "steps": rows("steps", "step_id"),
        "step_attempts": rows("step_attempts", "step_id, attempt"),
        "run_events": rows("run_events", "event_id"),
    }


def _nothing_of_schema_runs(schema: str) -> str:
    """SQL: no backend other than ours runs a statement on the schema (the server is quiet)."""
    return f"NOT EXISTS (SELECT FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%{schema}.%')"


def test_calls_timed_out_on_a_row_lock_wrote_nothing_even_after_the_lock_is_released(start_server, proxy, db) -> None:
    server = start_server(url=proxy.url)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        steps = [new_step(stub, run.run_id, step_name=f"step-{n}") for n in range(CALLS)]
        before = _run_rows(db, server.schema, run.run_id)

        with psycopg.connect(db.info.dsn) as holder:  # a transaction of its own, open until the block ends
            steps_table = sql.Identifier(server.schema, "steps")
            holder.execute(sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(steps_table), (run.run_id,))
            calls = [
                stub.SetStepRunning.future(pb.SetStepRunningRequest(step_id=step.step_id), timeout=DEADLINE) for step in steps
            ]
            answers = []
            for call in calls:
                try:
                    call.result()
                    answers.append((grpc.StatusCode.OK, ""))
                except grpc.RpcError as err:
                    answers.append((err.code(), error_info_of(err)[0]))
            # The server answered (a deadline the client's clock ends has no reason), and only after
            # PostgreSQL had cancelled each statement: nothing of the server waits for the lock any more,
            # before it is released.
            assert answers == [(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")] * CALLS, answers
            wait_in_database(db, NOBODY_WAITS_FOR_A_LOCK, timeout=5)
            holder.rollback()

        # Released: had a statement lived on, it would now take the lock and commit. Wait until
        # nothing of the server runs in PostgreSQL, then look.
        wait_in_database(db, _nothing_of_schema_runs(server.schema), timeout=10)
        after = _run_rows(db, server.schema, run.run_id)
        assert not [step for step in after["steps"] if step["status"] == "running"], after["steps"]
        assert after == before

        # The server is fine afterwards: the same call now succeeds.
        assert stub.SetStepRunning(pb.SetStepRunningRequest(step_id=steps[0].step_id), timeout=10).step.status == pb.STEP_STATUS_RUNNING


def test_a_call_cancelled_by_its_client_while_waiting_on_a_row_lock_leaves_nothing_behind(start_server, proxy, db) -> None:
    """Without a deadline, a caller that goes away has its statement cancelled in PostgreSQL too,
    in the background: it does not wait for the lock and commit once the lock is released."""
    server = start_server(url=proxy.url)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        step = new_step(stub, run.run_id)
        before = _run_rows(db, server.schema, run.run_id)
        with psycopg.connect(db.info.dsn) as holder:
            holder.execute(sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(sql.Identifier(server.schema, "steps")), (run.run_id,))
            call = stub.SetStepRunning.future(pb.SetStepRunningRequest(step_id=step.step_id))
            wait_in_database(db, SOMEONE_WAITS_FOR_A_LOCK, timeout=10)
            assert call.cancel()
            wait_in_database(db, NOBODY_WAITS_FOR_A_LOCK, timeout=10)
            holder.rollback()
        wait_in_database(db, _nothing_of_schema_runs(server.schema), timeout=10)
        assert _run_rows(db, server.schema, run.run_id) == before
        assert stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id), timeout=10).step.status == pb.STEP_STATUS_RUNNING
