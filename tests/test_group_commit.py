"""Group commit: concurrent operations of one kind share one statement and one commit, and each is
answered as it would be alone, only after that commit.

The server is told (a test-only flag) to hold operations until a group of GROUP form, so that the
operations of a test are grouped for certain; its metrics say how many statements ran, and with how
many operations each (`workflowstate_db_group_size`), which proves they shared one.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import grpc
import psycopg
import pytest
from psycopg import sql
from support.flows import Ending, error_info_of
from support.grouping import GROUP, HOLD_SECONDS, group_sizes, grouping_server, waits_on
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

RUNNING, COMPLETED = pb.RUN_STATUS_RUNNING, pb.RUN_STATUS_COMPLETED


@pytest.fixture
def grouping(start_server: Callable[..., ServerProcess]) -> Iterator[tuple[ServerProcess, pb_grpc.WorkflowStateServiceStub]]:
    server = grouping_server(start_server)
    with grpc.insecure_channel(server.target) as channel:
        yield server, pb_grpc.WorkflowStateServiceStub(channel)


def _outcome(future: Future[Any]) -> Ending:
    """How the call ended: its code, message, reason and metadata."""
    try:
        future.result(timeout=60)
    except grpc.RpcError as err:
        reason, _, metadata = error_info_of(err)
        return Ending(err.code(), err.details() or "", reason, metadata)
    return SUCCEEDED


SUCCEEDED = Ending(grpc.StatusCode.OK, "", "", {})


def _together(calls: Sequence[tuple[Any, Any, float | None]]) -> list[Future[Any]]:
    """Send (method, request, timeout) calls at once; their futures, in order."""
    return [method.future(request, timeout=timeout) for method, request, timeout in calls]


def _new_runs(stub: pb_grpc.WorkflowStateServiceStub, count: int = GROUP) -> list[str]:
    """`count` new runs, created together (so as one group)."""
    requests = [pb.CreateRunRequest(workflow=f"wf-{uuid.uuid4().hex[:8]}", input_json="{}") for _ in range(count)]
    return [future.result(timeout=60).run.run_id for future in _together([(stub.CreateRun, request, None) for request in requests])]


def _complete(stub: pb_grpc.WorkflowStateServiceStub, run_id: str, output: str = "1", timeout: float | None = None) -> tuple[Any, Any, Any]:
    return stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run_id, status=COMPLETED, output_json=output), timeout


def _status(db: psycopg.Connection, schema: str, run_id: str) -> str:
    query = sql.SQL("SELECT status FROM {} WHERE run_id = %s").format(sql.Identifier(schema, "runs"))
    return db.execute(query, (run_id,)).fetchone()[0]


def test_a_group_commits_at_once_around_a_row_another_transaction_locked(grouping, db) -> None:
    server, stub = grouping
    locked, *free = _new_runs(stub)
    with psycopg.connect(db.info.dsn) as holder:  # a transaction of its own, open until the block ends
        holder.execute(sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(sql.Identifier(server.schema, "runs")), (locked,))
        futures = _together([_complete(stub, run_id) for run_id in (locked, *free)])
        # The rest of the group is answered and committed while the lock is still held...
        assert [_outcome(future) for future in futures[1:]] == [SUCCEEDED] * len(free)
        assert [_status(db, server.schema, run_id) for run_id in free] == ["completed"] * len(free)
        # ...and the locked run's operation waits for the lock alone, as a statement of its own would.
        wait_in_database(db, waits_on(holder))
        assert not futures[0].done()
        assert _status(db, server.schema, locked) == "running"
    assert _outcome(futures[0]) == SUCCEEDED
    assert _status(db, server.schema, locked) == "completed"
    # One statement held the whole group; the locked run's operation then ran alone.
    assert group_sizes(server, "update_run_status") == {"statements": 2, "operations": GROUP + 1, "of 2 or more": 1, f"of {GROUP} or more": 1}


def test_step_moves_of_a_group_commit_at_once_around_a_step_another_transaction_locked(grouping, db) -> None:
    server, stub = grouping
    run_id = _new_runs(stub)[0]
    # Inserted together: one at a time, each would wait out the hold for a group to form.
    inserts = _together(
        [(stub.InsertStepState, pb.InsertStepStateRequest(run_id=run_id, step_name=f"s{index}", rpc_name="", data_json="{}"), None)
         for index in range(GROUP)]
    )  # fmt: skip
    locked, *free = [future.result().step.step_id for future in inserts]
    steps = sql.Identifier(server.schema, "steps")
    with psycopg.connect(db.info.dsn) as holder:
        holder.execute(sql.SQL("SELECT FROM {} WHERE step_id = %s FOR UPDATE").format(steps), (locked,))
        futures = _together([(stub.SetStepRunning, pb.SetStepRunningRequest(step_id=step_id), None) for step_id in (locked, *free)])
        assert [_outcome(future) for future in futures[1:]] == [SUCCEEDED] * len(free)
        wait_in_database(db, waits_on(holder))
        assert not futures[0].done()
    assert _outcome(futures[0]) == SUCCEEDED
    # Every step and its attempt row moved, each once.
    query = sql.SQL("SELECT s.status, a.status FROM {} s JOIN {} a ON a.step_id = s.step_id WHERE s.run_id = %s").format(
        steps, sql.Identifier(server.schema, "step_attempts")
    )
    assert db.execute(query, (run_id,)).fetchall() == [("running", "running")] * GROUP
    assert group_sizes(server, "set_step_status") == {"statements": 2, "operations": GROUP + 1, "of 2 or more": 1, f"of {GROUP} or more": 1}


def _hold_request_id(holder: psycopg.Connection, schema: str, request_id: str) -> None:
    """Insert a run with this request_id in the holder's open transaction: a CreateRun naming it waits for that transaction."""
    holder.execute(
        sql.SQL("INSERT INTO {} (run_id, workflow, status, input, request_id) VALUES (gen_random_uuid(), 'held', 'running', '{{}}', %s)").format(
            sql.Identifier(schema, "runs")
        ),
        (request_id,),
    )


def _create(stub: pb_grpc.WorkflowStateServiceStub, workflow: str, request_id: str = "", timeout: float | None = None) -> tuple[Any, Any, Any]:
    return stub.CreateRun, pb.CreateRunRequest(workflow=workflow, input_json="{}", request_id=request_id), timeout


def _runs_of(db: psycopg.Connection, schema: str, *, workflow: str | None = None, request_id: str | None = None) -> int:
    column, value = ("workflow", workflow) if workflow is not None else ("request_id", request_id)
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(sql.Identifier(schema, "runs"), sql.Identifier(column))
    return db.execute(query, (value,)).fetchone()[0]


def test_a_members_deadline_inside_a_group_answers_it_alone_and_the_others_commit(grouping, db, unique) -> None:
    server, stub = grouping
    request_id = f"held-{unique}"
    with psycopg.connect(db.info.dsn) as holder:
        _hold_request_id(holder, server.schema, request_id)
        # The group's statement waits for the holder (the request_id's index entry) until the
        # first member's deadline: it is cancelled in PostgreSQL, and the others go again.
        futures = _together([
            _create(stub, f"late-{unique}", request_id, timeout=1.5),
            _create(stub, f"free-{unique}"),
            _create(stub, f"free-{unique}"),
        ])
        assert [_outcome(future) for future in futures[1:]] == [SUCCEEDED] * 2
        late = _outcome(futures[0])
        assert (late.code, late.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"), late
        holder.rollback()
    # Released: the cancelled statement wrote nothing, also now that it could.
    assert _runs_of(db, server.schema, request_id=request_id) == 0
    assert _runs_of(db, server.schema, workflow=f"free-{unique}") == 2
    # The group's statement (cancelled), then one of the two members whose time had not come.
    assert group_sizes(server, "create_run") == {"statements": 2, "operations": GROUP + 2, "of 2 or more": 2, f"of {GROUP} or more": 1}


def test_an_error_caused_by_one_member_reaches_it_alone(grouping, db, unique) -> None:
    server, stub = grouping
    refused = f"refused-{unique}"
    # A value PostgreSQL refuses that validation lets through: a trigger of this test's schema refuses one workflow.
    db.execute(
        sql.SQL(
            "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.workflow = {refused} THEN RAISE EXCEPTION 'workflow % refused by the test', NEW.workflow USING ERRCODE = '22023'; END IF; "
            "RETURN NEW; END $$; "
            "CREATE TRIGGER refuse_one BEFORE INSERT ON {runs} FOR EACH ROW EXECUTE FUNCTION {function}()"
        ).format(function=sql.Identifier(server.schema, "refuse_one"), refused=sql.Literal(refused), runs=sql.Identifier(server.schema, "runs"))
    )
    futures = _together([_create(stub, f"fine-{unique}"), _create(stub, refused), _create(stub, f"fine-{unique}")])
    outcomes = [_outcome(future) for future in futures]
    assert outcomes[0] == outcomes[2] == SUCCEEDED
    # The member's own error, word for word: the message is what reaches it alone.
    assert (outcomes[1].code, outcomes[1].reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"), outcomes[1]
    assert f"workflow {refused} refused by the test" in outcomes[1].message, outcomes[1]
    assert _runs_of(db, server.schema, workflow=f"fine-{unique}") == 2
    assert _runs_of(db, server.schema, workflow=refused) == 0
    # The group's statement failed whole; each member then ran alone.
    assert group_sizes(server, "create_run") == {"statements": 4, "operations": 2 * GROUP, "of 2 or more": 1, f"of {GROUP} or more": 1}


def test_a_connection_killed_under_a_group_answers_every_member_outcome_unknown_and_loses_no_acknowledged_write(grouping, db, unique) -> None:
    server, stub = grouping
    request_id = f"held-{unique}"
    with psycopg.connect(db.info.dsn) as holder:
        _hold_request_id(holder, server.schema, request_id)
        futures = _together([_create(stub, f"killed-{unique}", request_id), _create(stub, f"killed-{unique}"), _create(stub, f"killed-{unique}")])
        wait_in_database(db, waits_on(holder))
        [killed] = db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder.info.backend_pid,)
        ).fetchall()
        assert killed == (True,)
        outcomes = [_outcome(future) for future in futures]
        holder.rollback()
    for outcome in outcomes:
        assert (outcome.code, outcome.reason, outcome.metadata) == (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE", {"outcome": "unknown"}), outcome
    # The killed statement's transaction was rolled back: none of the members' runs exists.
    assert _runs_of(db, server.schema, workflow=f"killed-{unique}") == 0
    # The server goes on: the same calls again are grouped and acknowledged, and all of them stored.
    again = _together([_create(stub, f"again-{unique}", request_id), _create(stub, f"again-{unique}"), _create(stub, f"again-{unique}")])
    assert [_outcome(future) for future in again] == [SUCCEEDED] * GROUP
    assert _runs_of(db, server.schema, workflow=f"again-{unique}") == GROUP


def test_two_operations_on_one_row_in_one_turn_give_what_they_give_one_after_the_other(start_server, db) -> None:
    server = grouping_server(start_server, group=2)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        [run_id, _] = _new_runs(stub, 2)
        futures = _together([_complete(stub, run_id, output='"first"'), _complete(stub, run_id, output='"second"')])
        outcomes = sorted((_outcome(future) for future in futures), key=lambda outcome: outcome[0] != grpc.StatusCode.OK)
    # One of them completed the run; the other found it completed with another output, as it would after it.
    assert outcomes[0] == SUCCEEDED
    assert (outcomes[1].code, outcomes[1].reason, outcomes[1].metadata["prior_status"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "DIFFERENT_PAYLOAD",
        "COMPLETED",
    ), outcomes[1]
    # They met (the server held them until both had come), and no statement held both: a group
    # holds one operation per row. (The second may also have met the first's lock, and run alone.)
    groups = group_sizes(server, "update_run_status")
    assert groups["statements"] >= 2 and groups["of 2 or more"] == 0, groups


@pytest.mark.parametrize("bound", ["--group-max-operations=2", "--group-max-bytes=600"])
def test_a_group_is_bounded_in_operations_and_bytes(start_server, db, unique, bound: str) -> None:
    # Four runs of 200 bytes of input each, held until all four wait: two statements of two each,
    # by either bound (an input counts its payload and 64 bytes for the rest: two fit in 600, three do not).
    server = start_server("--test-group-hold", "4", "--test-group-hold-seconds", HOLD_SECONDS, "--metrics-listen", "127.0.0.1:0", bound)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        request = pb.CreateRunRequest(workflow=f"bounded-{unique}", input_json='"' + "x" * 198 + '"')
        assert [_outcome(future) for future in _together([(stub.CreateRun, request, None)] * 4)] == [SUCCEEDED] * 4
    assert _runs_of(db, server.schema, workflow=f"bounded-{unique}") == 4
    assert group_sizes(server, "create_run") == {"statements": 2, "operations": 4, "of 2 or more": 2, "of 3 or more": 0}


_ONE_CREATE_RUN = """
import sys, grpc
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    pb_grpc.WorkflowStateServiceStub(channel).CreateRun(pb.CreateRunRequest(workflow=sys.argv[2], input_json="{}"), timeout=120)
"""


def test_operations_of_two_client_processes_share_one_statement(start_server, db, unique) -> None:
    server = grouping_server(start_server, group=2)
    workflow = f"two-processes-{unique}"
    clients = [subprocess.Popen([sys.executable, "-c", _ONE_CREATE_RUN, server.target, workflow]) for _ in range(2)]
    assert [client.wait(timeout=180) for client in clients] == [0, 0]
    assert _runs_of(db, server.schema, workflow=workflow) == 2
    # Counted on the server: two operations, one statement.
    assert group_sizes(server, "create_run") == {"statements": 1, "operations": 2, "of 2 or more": 1, "of 3 or more": 0}
