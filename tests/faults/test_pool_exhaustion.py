"""Pool exhaustion is not a database outage.

With `--pool-size 2` and 50 concurrent calls, 2 hold the connections waiting on a row lock and the
other 48 find none free: they are answered RESOURCE_EXHAUSTED "the server is overloaded ..." (never
"the database cannot be reached") and wrote nothing, health stays SERVING (PostgreSQL answers), and
once the lock goes away everything works again.
"""

from __future__ import annotations

import threading

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql
from support.faults_servers import SERVING
from support.flows import error_info_of, new_run, new_step
from support.health_watch import HealthWatch

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

POOL_SIZE = 2
CALLS = 50


class _Answers:
    """The outcome of each call as it arrives, and a way to wait for a number of them."""

    def __init__(self) -> None:
        self.by_step: dict[str, tuple[grpc.StatusCode, str, str]] = {}
        self._changed = threading.Condition()

    def record(self, step_id: str, future: grpc.Future) -> None:
        error = future.exception()
        outcome = (grpc.StatusCode.OK, "", "") if error is None else (error.code(), error_info_of(error)[0], error.details() or "")
        with self._changed:
            self.by_step[step_id] = outcome
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.by_step) >= count, timeout), f"only {len(self.by_step)} answers"


def _statuses(db: psycopg.Connection, schema: str, run_id: str) -> dict[str, str]:
    query = sql.SQL("SELECT step_id::text, status FROM {} WHERE run_id = %s").format(sql.Identifier(schema, "steps"))
    return dict(db.execute(query, (run_id,)).fetchall())


def test_an_exhausted_pool_answers_overloaded_keeps_serving_and_recovers(start_server, db) -> None:
    server = start_server("--pool-size", str(POOL_SIZE))
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        run = new_run(stub)
        steps = [new_step(stub, run.run_id, step_name=f"step-{n}").step_id for n in range(CALLS)]
        answers = _Answers()
        health_watch = HealthWatch(server.target)

        with psycopg.connect(db.info.dsn) as holder:
            holder.execute(
                sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(sql.Identifier(server.schema, "steps")), (run.run_id,)
            )
            for step_id in steps:
                future = stub.SetStepRunning.future(pb.SetStepRunningRequest(step_id=step_id), timeout=60)
                future.add_done_callback(lambda done, step_id=step_id: answers.record(step_id, done))
            # All but the calls holding the connections are answered while the lock is held.
            answers.wait_for(CALLS - POOL_SIZE, timeout=30)
            refused = dict(answers.by_step)
            assert {(code, reason) for code, reason, _ in refused.values()} == {(grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")}, refused
            for _, _, details in refused.values():
                assert f"all {POOL_SIZE} database connections are busy" in details, "the message names the bound"
            # Still exhausted, calls keep being refused, each after the pool timeout, while the health
            # monitor probes several times (every 0.2 s): PostgreSQL answers, so it keeps serving.
            for _ in range(2):
                with pytest.raises(grpc.RpcError) as refusal:
                    stub.GetRun(pb.GetRunRequest(run_id=run.run_id), timeout=30)
                assert (refusal.value.code(), error_info_of(refusal.value)[0]) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")
            assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == SERVING
            # Nothing refused was written: only the calls still waiting may change their steps.
            waiting = set(steps) - set(refused)
            assert len(waiting) == POOL_SIZE
            assert {step for step, status in _statuses(db, server.schema, run.run_id).items() if status != "pending"} == set()
            holder.rollback()

        answers.wait_for(CALLS, timeout=30)
        assert {answers.by_step[step] for step in waiting} == {(grpc.StatusCode.OK, "", "")}
        statuses = _statuses(db, server.schema, run.run_id)
        assert {step for step, status in statuses.items() if status == "running"} == waiting

        # Full recovery: the refused calls now succeed.
        for step_id in refused:
            assert stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step_id), timeout=10).step.status == pb.STEP_STATUS_RUNNING
        assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == SERVING
        health_watch.close()
        assert {status for _, status in health_watch.seen} == {SERVING}, "health left SERVING while only the pool was exhausted"
    log = server.log_text()
    assert "database unreachable" not in log, "pool exhaustion was taken for an outage"
