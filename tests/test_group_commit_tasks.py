"""Group commit on the worker and engine paths: a worker's fails from many streams, ClaimStep, and
the engine state writes share one statement and one commit, and a row another transaction has
locked leaves its group to wait alone. Lists of attempts failed by one caller (a stream's end, the
sweeper) run in one statement, and an attempt locked elsewhere is failed once the lock is free,
never dropped.

The grouping server holds operations until GROUP wait; the state a test needs first is made through
a plain server on the same schema, so that nothing else is held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import grpc
import psycopg
import pytest
from psycopg import sql
from support.flows import scheduled_steps
from support.lease_stream import LeaseStream
from support.grouping import GROUP, group_sizes, grouping_server, waits_on
from support.server_process import ServerProcess
from support.task_stream import TaskStream
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

Stub = pb_grpc.WorkflowStateServiceStub


@pytest.fixture
def servers(start_server: Callable[..., ServerProcess]) -> Iterator[tuple[ServerProcess, Stub, Stub]]:
    """A grouping server, its stub, and the stub of a plain server on the same schema (for setting up state)."""
    grouped = grouping_server(start_server)
    plain = start_server(schema=grouped.schema)
    with grpc.insecure_channel(grouped.target) as grouped_channel, grpc.insecure_channel(plain.target) as plain_channel:
        yield grouped, Stub(grouped_channel), Stub(plain_channel)


def _lock(holder: psycopg.Connection, schema: str, table: str, column: str, value: str) -> None:
    """Lock a row for update in the holder's transaction (open until its block ends)."""
    holder.execute(sql.SQL("SELECT FROM {} WHERE {} = %s FOR UPDATE").format(sql.Identifier(schema, table), sql.Identifier(column)), (value,))


def _step_status(db: psycopg.Connection, schema: str, step_id: str) -> str:
    query = sql.SQL("SELECT status FROM {} WHERE step_id = %s").format(sql.Identifier(schema, "steps"))
    return db.execute(query, (step_id,)).fetchone()[0]


def test_worker_fails_of_many_streams_share_one_statement_around_a_step_another_transaction_locked(servers, db, rpc) -> None:
    grouped, stub, plain = servers
    workers = [TaskStream(stub) for _ in range(GROUP)]
    for worker in workers:
        worker.subscribe([rpc], max_in_flight=1)
    scheduled_steps(plain, rpc, GROUP)
    tasks = [worker.expect("task") for worker in workers]
    with psycopg.connect(db.info.dsn) as holder:
        _lock(holder, grouped.schema, "steps", "step_id", tasks[0].step_id)
        for worker, task in zip(workers, tasks, strict=True):
            worker.fail(task, "boom", retryable=False)
        # The rest of the group is answered and committed while the lock is still held...
        for worker in workers[1:]:
            assert worker.expect("accepted").status == pb.STEP_STATUS_FAILED
        assert [_step_status(db, grouped.schema, task.step_id) for task in tasks[1:]] == ["failed"] * (GROUP - 1)
        # ...and the locked step's fail waits for the lock alone.
        wait_in_database(db, waits_on(holder))
        assert _step_status(db, grouped.schema, tasks[0].step_id) == "running"
    assert workers[0].expect("accepted").status == pb.STEP_STATUS_FAILED
    assert _step_status(db, grouped.schema, tasks[0].step_id) == "failed"
    assert group_sizes(grouped, "fail_tasks") == {"statements": 2, "operations": GROUP + 1, "of 2 or more": 1, f"of {GROUP} or more": 1}
    for worker in workers:
        worker.close()
        assert worker.next() == grpc.StatusCode.OK


def test_the_end_of_a_stream_fails_its_attempts_at_once_and_one_locked_elsewhere_once_free(server, stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=GROUP)
    scheduled_steps(stub, rpc, GROUP, retries=1)
    tasks = [worker.expect("task") for _ in range(GROUP)]
    with psycopg.connect(db.info.dsn) as holder:
        _lock(holder, server.schema, "steps", "step_id", tasks[0].step_id)
        worker.close()
        # The attempts nobody else holds are failed (to their next attempt) while the lock is held...
        wait_in_database(db, waits_on(holder))
        assert [_step_status(db, server.schema, task.step_id) for task in tasks[1:]] == ["scheduled"] * (GROUP - 1)
        assert _step_status(db, server.schema, tasks[0].step_id) == "running"
    # ...and the locked one too, once the lock is free: the stream ends after it.
    assert worker.next() == grpc.StatusCode.OK
    assert _step_status(db, server.schema, tasks[0].step_id) == "scheduled"


def _steps_of_a_new_run(stub: Stub, count: int = GROUP) -> tuple[str, list[str]]:
    """A new run with `count` steps without a function of their own (pending): the run's id, the steps' names."""
    run_id = stub.CreateRun(pb.CreateRunRequest(workflow="wf", input_json="{}")).run.run_id
    names = [f"s{index}" for index in range(count)]
    for name in names:
        stub.InsertStepState(pb.InsertStepStateRequest(run_id=run_id, step_name=name, rpc_name="", data_json="{}"))
    return run_id, names


def test_claims_of_a_group_commit_at_once_around_a_step_another_transaction_locked(servers, db) -> None:
    grouped, stub, plain = servers
    run_id, names = _steps_of_a_new_run(plain)
    step_ids = [plain.GetStepState(pb.GetStepStateRequest(run_id=run_id, step_name=name)).step.step_id for name in names]
    with psycopg.connect(db.info.dsn) as holder:
        _lock(holder, grouped.schema, "steps", "step_id", step_ids[0])
        futures = [stub.ClaimStep.future(pb.ClaimStepRequest(run_id=run_id, step_name=name, rpc_name="r")) for name in names]
        # The rest of the group is claimed and committed while the lock is still held...
        assert [future.result(timeout=60).claimed for future in futures[1:]] == [True] * (GROUP - 1)
        assert [_step_status(db, grouped.schema, step_id) for step_id in step_ids[1:]] == ["running"] * (GROUP - 1)
        # ...and the locked step's claim waits for the lock alone.
        wait_in_database(db, waits_on(holder))
        assert not futures[0].done()
    assert futures[0].result(timeout=60).claimed
    # Each claimed once: a second claim finds them running.
    assert [plain.ClaimStep(pb.ClaimStepRequest(run_id=run_id, step_name=name, rpc_name="r")).claimed for name in names] == [False] * GROUP
    assert group_sizes(grouped, "claim_step") == {"statements": 2, "operations": GROUP + 1, "of 2 or more": 1, f"of {GROUP} or more": 1}


def _new_runs(stub: Stub, count: int = GROUP) -> list[str]:
    return [stub.CreateRun(pb.CreateRunRequest(workflow="wf", input_json="{}")).run.run_id for _ in range(count)]


def _state(db: psycopg.Connection, schema: str, run_id: str) -> object:
    return db.execute(sql.SQL("SELECT state FROM {} WHERE run_id = %s").format(sql.Identifier(schema, "runs")), (run_id,)).fetchone()[0]


def test_state_writes_of_a_group_commit_at_once_around_a_run_another_transaction_locked(servers, db) -> None:
    grouped, stub, plain = servers
    run_ids = _new_runs(plain)
    with psycopg.connect(db.info.dsn) as holder:
        _lock(holder, grouped.schema, "runs", "run_id", run_ids[0])
        futures = [stub.UpdateRunState.future(pb.UpdateRunStateRequest(run_id=run_id, name="n", value_json="1")) for run_id in run_ids]
        # The rest of the group is written and committed while the lock is still held...
        for future in futures[1:]:
            future.result(timeout=60)
        assert [_state(db, grouped.schema, run_id) for run_id in run_ids[1:]] == [{"n": 1}] * (GROUP - 1)
        # ...and the locked run's write waits for the lock alone.
        wait_in_database(db, waits_on(holder))
        assert not futures[0].done()
    futures[0].result(timeout=60)
    assert _state(db, grouped.schema, run_ids[0]) == {"n": 1}
    assert group_sizes(grouped, "update_run_state") == {"statements": 2, "operations": GROUP + 1, "of 2 or more": 1, f"of {GROUP} or more": 1}
    # Reads of the runs' state together share one statement too, each answered its own run's.
    futures = [stub.GetRunState.future(pb.GetRunStateRequest(run_id=run_id)) for run_id in run_ids]
    assert [future.result(timeout=60).state_json for future in futures] == ['{"n": 1}'] * GROUP
    assert group_sizes(grouped, "get_run_state") == {"statements": 1, "operations": GROUP, "of 2 or more": 1, f"of {GROUP} or more": 1}


@pytest.mark.parametrize("link", ["set_step_branch", "set_step_child_run"])
def test_step_links_of_a_group_share_one_statement(servers, link: str) -> None:
    grouped, stub, plain = servers
    run_id, names = _steps_of_a_new_run(plain)
    step_ids = [plain.GetStepState(pb.GetStepStateRequest(run_id=run_id, step_name=name)).step.step_id for name in names]
    if link == "set_step_branch":
        calls = [stub.SetStepBranch.future(pb.SetStepBranchRequest(step_id=step_id, branch_key=f"b-{step_id}")) for step_id in step_ids]
        linked = [future.result(timeout=60).step.branch_key for future in calls]
        assert linked == [f"b-{step_id}" for step_id in step_ids]
    else:
        children = _new_runs(plain)
        requests = [pb.SetStepChildRunRequest(step_id=step_id, child_run_id=child) for step_id, child in zip(step_ids, children, strict=True)]
        linked = [future.result(timeout=60).step.child_run_id for future in [stub.SetStepChildRun.future(request) for request in requests]]
        assert linked == children
    assert group_sizes(grouped, link) == {"statements": 1, "operations": GROUP, "of 2 or more": 1, f"of {GROUP} or more": 1}


def test_fenced_writes_of_a_group_commit_at_once_around_a_lease_row_another_transaction_locked(servers, db) -> None:
    grouped, stub, plain = servers
    run_ids = _new_runs(plain)
    leases = [LeaseStream(plain) for _ in run_ids]
    tokens = []
    for lease, run_id in zip(leases, run_ids, strict=True):
        lease.acquire(f"run:{run_id}", timedelta(minutes=5))
        tokens.append(lease.expect("granted").fencing_token)
    with psycopg.connect(db.info.dsn) as holder:
        _lock(holder, grouped.schema, "leases", "key", f"run:{run_ids[0]}")
        futures = [
            stub.UpdateRunState.future(pb.UpdateRunStateRequest(run_id=run_id, name="n", value_json="1", fencing_token=token))
            for run_id, token in zip(run_ids, tokens, strict=True)
        ]
        # The writes fenced by the other keys are written and committed while the lease row is locked...
        for future in futures[1:]:
            future.result(timeout=60)
        assert [_state(db, grouped.schema, run_id) for run_id in run_ids[1:]] == [{"n": 1}] * (GROUP - 1)
        # ...and the one fenced by the locked key waits for it alone, as a fenced write of its own would.
        wait_in_database(db, waits_on(holder))
        assert not futures[0].done()
        assert _state(db, grouped.schema, run_ids[0]) is None
    futures[0].result(timeout=60)
    assert _state(db, grouped.schema, run_ids[0]) == {"n": 1}
    assert group_sizes(grouped, "update_run_state") == {"statements": 2, "operations": GROUP + 1, "of 2 or more": 1, f"of {GROUP} or more": 1}
    for lease in leases:
        lease.close()


def test_watchers_of_different_runs_reading_at_one_moment_share_one_read(servers) -> None:
    grouped, stub, plain = servers
    run_ids = _new_runs(plain)
    for run_id in run_ids:
        plain.InsertStepState(pb.InsertStepStateRequest(run_id=run_id, step_name="a", rpc_name="", data_json="{}"))
        plain.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run_id, status=pb.RUN_STATUS_COMPLETED, output_json="1"))

    def watch(through: Stub, run_id: str) -> list[pb.RunEvent]:
        return [response.event for response in through.WatchRun(pb.WatchRunRequest(run_id=run_id), timeout=60)]

    with ThreadPoolExecutor(GROUP) as pool:
        watched = list(pool.map(lambda run_id: watch(stub, run_id), run_ids))
    # Each watcher got its own run's events, all of them, as a watcher alone gets them...
    assert watched == [watch(plain, run_id) for run_id in run_ids]
    assert [{event.run_id for event in events} for events in watched] == [{run_id} for run_id in run_ids]
    # ...and the reads of the runs shared statements.
    assert group_sizes(grouped, "run_events_of_run")[f"of {GROUP} or more"] >= 1
