"""Batch: each operation has exactly the outcome of the separate call, on its own; the batch is
refused whole, with nothing written, when it is too long, too big or holds an empty operation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import grpc
import psycopg
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from support.flows import Stub, error_info_of, new_run, new_step, status_of, step_in
from support.metrics import metrics_address, scrape
from support.server_process import ServerProcess
from support.tcp_proxy import CuttableProxy
from support.waiting import NOBODY_WAITS_FOR_A_LOCK, SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

MISSING = str(uuid.UUID(int=0))
LIMIT = 1024 * 1024  # the server's default payload limit
RUNNING, SUCCEEDED = pb.STEP_STATUS_RUNNING, pb.STEP_STATUS_SUCCEEDED
Operation = tuple[str, Message]  # (BatchOperation oneof field, request)

# The unary RPC of each BatchOperation field: create_run -> CreateRun.
RPC_OF = {field.name: field.message_type.name.removesuffix("Request") for field in pb.BatchOperation.DESCRIPTOR.oneofs_by_name["operation"].fields}


def _repeat_of_create_run(stub: Stub, workflow: str) -> Operation:
    """A CreateRun with a request_id already used: the run it created first."""
    request = pb.CreateRunRequest(workflow=workflow, input_json="[]", request_id=f"r-{workflow}")
    stub.CreateRun(request)
    return "create_run", request


# Each case builds its state and returns one operation. Successes and failures of every operation:
# validation (INVALID_ARGUMENT), missing rows, illegal transitions, duplicates, fencing, payload
# limits, idempotent repeats, and first writes.
CASES: dict[str, Callable[[Stub, str], Operation]] = {
    "create_run": lambda s, u: ("create_run", pb.CreateRunRequest(workflow=u, input_json='{"n": 1}')),
    "create_run bad json": lambda s, u: ("create_run", pb.CreateRunRequest(workflow=u, input_json='{"a": ')),
    "create_run empty workflow": lambda s, u: ("create_run", pb.CreateRunRequest(workflow="")),
    "create_run payload over limit": lambda s, u: ("create_run", pb.CreateRunRequest(workflow=u, input_json='"' + "x" * LIMIT + '"')),
    "create_run request_id repeat": _repeat_of_create_run,
    "get_run": lambda s, u: ("get_run", pb.GetRunRequest(run_id=new_run(s, u).run_id)),
    "get_run bad uuid": lambda s, u: ("get_run", pb.GetRunRequest(run_id="nope")),
    "get_run missing": lambda s, u: ("get_run", pb.GetRunRequest(run_id=MISSING)),
    "get_run_history": lambda s, u: ("get_run_history", pb.GetRunHistoryRequest(run_id=step_in(s, [RUNNING]).run_id)),
    "get_run_history missing": lambda s, u: ("get_run_history", pb.GetRunHistoryRequest(run_id=MISSING)),
    "update_run_status": lambda s, u: (
        "update_run_status",
        pb.UpdateRunStatusRequest(run_id=new_run(s, u).run_id, status=pb.RUN_STATUS_COMPLETED, output_json='{"done": 1}'),
    ),
    "update_run_status unspecified": lambda s, u: ("update_run_status", pb.UpdateRunStatusRequest(run_id=new_run(s, u).run_id)),
    "update_run_status finished run": lambda s, u: (
        "update_run_status",
        pb.UpdateRunStatusRequest(
            run_id=s.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=new_run(s, u).run_id, status=pb.RUN_STATUS_CANCELLED)).run.run_id,
            status=pb.RUN_STATUS_COMPLETED,
        ),
    ),
    "insert_step_state": lambda s, u: (
        "insert_step_state",
        pb.InsertStepStateRequest(run_id=new_run(s, u).run_id, step_name="a", rpc_name="r", data_json="{}", options=pb.StepOptions(retries=2)),
    ),
    "insert_step_state duplicate": lambda s, u: (
        "insert_step_state",
        pb.InsertStepStateRequest(run_id=new_step(s, new_run(s, u).run_id, "a").run_id, step_name="a", rpc_name="r", data_json="{}"),
    ),
    "insert_step_state negative retries": lambda s, u: (
        "insert_step_state",
        pb.InsertStepStateRequest(run_id=new_run(s, u).run_id, step_name="a", rpc_name="r", options=pb.StepOptions(retries=-1)),
    ),
    "insert_step_state fence without token": lambda s, u: (
        "insert_step_state",
        pb.InsertStepStateRequest(run_id=new_run(s, u).run_id, step_name="a", rpc_name="r", lease_key="k"),
    ),
    "get_step_state": lambda s, u: ("get_step_state", pb.GetStepStateRequest(run_id=step_in(s, []).run_id, step_name="step")),
    "get_step_state missing": lambda s, u: ("get_step_state", pb.GetStepStateRequest(run_id=new_run(s, u).run_id, step_name="none")),
    "set_step_scheduled": lambda s, u: ("set_step_scheduled", pb.SetStepScheduledRequest(step_id=step_in(s, []).step_id, delay=Duration(seconds=60))),
    "set_step_scheduled both times": lambda s, u: (
        "set_step_scheduled",
        pb.SetStepScheduledRequest(step_id=step_in(s, []).step_id, delay=Duration(seconds=1), not_before=Timestamp(seconds=1)),
    ),
    "set_step_running": lambda s, u: ("set_step_running", pb.SetStepRunningRequest(step_id=step_in(s, []).step_id)),
    "set_step_running repeat": lambda s, u: ("set_step_running", pb.SetStepRunningRequest(step_id=step_in(s, [RUNNING]).step_id)),
    "set_step_running illegal": lambda s, u: ("set_step_running", pb.SetStepRunningRequest(step_id=step_in(s, [RUNNING, SUCCEEDED]).step_id)),
    "set_step_running missing": lambda s, u: ("set_step_running", pb.SetStepRunningRequest(step_id=MISSING)),
    "set_step_running unknown fence": lambda s, u: (
        "set_step_running",
        pb.SetStepRunningRequest(step_id=step_in(s, []).step_id, lease_key=f"nobody-{u}", fencing_token=7),
    ),
    "set_step_running zero token": lambda s, u: ("set_step_running", pb.SetStepRunningRequest(step_id=MISSING, fencing_token=0)),
    "set_step_result": lambda s, u: ("set_step_result", pb.SetStepResultRequest(step_id=step_in(s, [RUNNING]).step_id, result_json="[1]")),
    "set_step_result bad json": lambda s, u: ("set_step_result", pb.SetStepResultRequest(step_id=step_in(s, [RUNNING]).step_id, result_json="{")),
    "set_step_error": lambda s, u: (
        "set_step_error",
        pb.SetStepErrorRequest(step_id=step_in(s, [RUNNING]).step_id, error=pb.Failure(message="boom", code="E")),
    ),
    "set_step_error no error": lambda s, u: ("set_step_error", pb.SetStepErrorRequest(step_id=step_in(s, [RUNNING]).step_id)),
    "create_retry_attempt": lambda s, u: (
        "create_retry_attempt",
        pb.CreateRetryAttemptRequest(step_id=step_in(s, [RUNNING, pb.STEP_STATUS_FAILED]).step_id, status=RUNNING),
    ),
    "create_retry_attempt bad status": lambda s, u: (
        "create_retry_attempt",
        pb.CreateRetryAttemptRequest(step_id=step_in(s, [RUNNING]).step_id, status=SUCCEEDED),
    ),
    "get_lease nobody": lambda s, u: ("get_lease", pb.GetLeaseRequest(key=f"nobody-{u}")),
    "get_lease empty key": lambda s, u: ("get_lease", pb.GetLeaseRequest(key="")),
}

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _comparable(message: Message) -> Message:
    """The message without what differs between two equal calls on twin states: ids and times."""
    copy = type(message)()
    copy.CopyFrom(message)
    stack = [copy]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            if field.name.endswith(("_id", "_time")) or field.name == "not_before":
                current.ClearField(field.name)
            elif field.message_type is not None:
                stack.extend(value if field.is_repeated else [value])
    return copy


# An outcome as compared: code, message, reply (None when refused), and the refusal's reason and metadata.
Answer = tuple[grpc.StatusCode, str, Message | None, str, dict[str, str]]


def _unary(stub: Stub, kind: str, request: Message) -> Answer:
    try:
        return grpc.StatusCode.OK, "", getattr(stub, RPC_OF[kind])(request), "", {}
    except grpc.RpcError as err:
        reason, _, metadata = error_info_of(err)
        return err.code(), err.details() or "", None, reason, metadata


def _batched(result: pb.BatchResult, kind: str) -> Answer:
    which = result.WhichOneof("result")
    if which == "error":
        [code] = [code for code in grpc.StatusCode if code.value[0] == result.error.code]
        return code, result.error.message, None, result.error.reason, dict(result.error.metadata)
    assert which == kind, f"result {which} for a {kind} operation"
    return grpc.StatusCode.OK, "", getattr(result, kind), "", {}


def _batch(*operations: Operation) -> pb.BatchRequest:
    return pb.BatchRequest(operations=[pb.BatchOperation(**{kind: request}) for kind, request in operations])


# Grouping forced on: a server that holds operations of a kind until GROUP of them wait (or a
# moment passed), so that the GROUP twin operations of one Batch share one statement and commit.
GROUP = 4


# The operations whose statement is set-based (their groups are counted), and the cases whose twins
# all name one row (a group holds one operation per row, so they never share a statement).
GROUPED_STATEMENT = {
    "create_run": "create_run",
    "get_run": "get_run",
    "update_run_status": "update_run_status",
    "insert_step_state": "insert_step",
    "get_step_state": "get_step",
    "create_retry_attempt": "create_retry_attempt",
    **{kind: "set_step_status" for kind in ("set_step_scheduled", "set_step_running", "set_step_result", "set_step_error")},
}
ONE_ROW_FOR_ALL_TWINS = {"create_run request_id repeat", "set_step_running missing"}


@pytest.fixture(scope="module")
def grouping(database_url: str) -> Iterator[tuple[Stub, str]]:
    """A server with grouping forced on, and the address of its metrics."""
    server = ServerProcess(
        database_url, f"grouped_{uuid.uuid4().hex[:8]}", "--test-group-hold", str(GROUP), "--test-group-hold-seconds", "0.05",
        "--metrics-listen", "127.0.0.1:0", "--log-level", "debug",
    ).start()
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.WorkflowStateServiceStub(channel), metrics_address(server.log_text())
    assert server.stop() == 0, server.log_text()[-4000:]
    assert "unexpected error" not in server.log_text()


def _statements_and_operations(address: str, statement: str) -> tuple[float, float]:
    samples = scrape(address)
    labels = (("statement", statement),)
    return samples.get(("workflowstate_db_group_size_count", labels), 0.0), samples.get(("workflowstate_db_group_size_sum", labels), 0.0)


@pytest.mark.parametrize("case", CASES)
def test_a_batched_operation_answers_as_the_separate_call(stub, unique, case: str) -> None:
    # Twin states, one for each way of calling: a write cannot be sent twice to one state.
    unary = _unary(stub, *CASES[case](stub, unique))
    kind, request = CASES[case](stub, unique)
    [result] = stub.Batch(_batch((kind, request))).results
    _assert_same(unary, _batched(result, kind))


@pytest.mark.parametrize("case", CASES)
def test_an_operation_grouped_with_others_answers_as_the_separate_call(grouping, unique, case: str) -> None:
    stub, metrics = grouping
    unary = _unary(stub, *CASES[case](stub, unique))
    twins = [CASES[case](stub, unique) for _ in range(GROUP)]
    statement = GROUPED_STATEMENT.get(twins[0][0])
    before = _statements_and_operations(metrics, statement) if statement else (0.0, 0.0)
    results = stub.Batch(_batch(*twins)).results
    for (kind, request), result in zip(twins, results, strict=True):
        batched = _batched(result, kind)
        _assert_same(unary, batched)
        # Each twin got its own row's answer, not another's of its group.
        if batched[2] is not None:
            answered = _ids(batched[2])
            assert all(answered.get(name, value) == value for name, value in _ids(request).items()), (request, batched[2])
    if statement is not None:
        after = _statements_and_operations(metrics, statement)
        statements, operations = after[0] - before[0], after[1] - before[1]
        # Twins that reached the database shared statements (none does when validation refused them).
        assert operations in (0, GROUP), (statements, operations)
        if operations and case not in ONE_ROW_FOR_ALL_TWINS:
            assert statements < operations, (statements, operations)


def _ids(message: Message) -> dict[str, str]:
    """The ids a message and the messages in it carry, by field name."""
    ids: dict[str, str] = {}
    stack = [message]
    while stack:
        current = stack.pop()
        for field, value in current.ListFields():
            if field.name.endswith("_id") and isinstance(value, str):
                ids[field.name] = value
            elif field.message_type is not None and not field.is_repeated:
                stack.append(value)
    return ids


def _assert_same(unary: Answer, batched: Answer) -> None:
    # Messages and metadata name the twin states' own ids.
    assert (batched[0], _UUID.sub("<id>", batched[1])) == (unary[0], _UUID.sub("<id>", unary[1]))
    assert (batched[3], _without_ids(batched[4])) == (unary[3], _without_ids(unary[4]))
    assert batched[0] != grpc.StatusCode.INTERNAL
    if unary[2] is not None:
        assert _comparable(batched[2]) == _comparable(unary[2])


def _without_ids(metadata: dict[str, str]) -> dict[str, str]:
    return {key: _UUID.sub("<id>", value) for key, value in metadata.items()}


def test_every_operation_of_the_contract_has_a_case() -> None:
    assert {case.split()[0] for case in CASES} == set(RPC_OF)


def _runs_named(db: psycopg.Connection, workflow: str, schema: str = "workflows_test") -> int:
    return db.execute(f'SELECT count(*) FROM "{schema}".runs WHERE workflow = %s', (workflow,)).fetchone()[0]


def test_a_failing_operation_does_not_affect_its_neighbours(stub, db, unique) -> None:
    run = new_run(stub)
    step = new_step(stub, run.run_id)
    batch = _batch(
        ("create_run", pb.CreateRunRequest(workflow=unique, input_json='{"i": 1}')),
        ("create_run", pb.CreateRunRequest(workflow=unique, input_json="{bad")),
        ("set_step_running", pb.SetStepRunningRequest(step_id=step.step_id)),
        ("get_run", pb.GetRunRequest(run_id=MISSING)),
        ("create_run", pb.CreateRunRequest(workflow=unique, input_json='{"i": 3}')),
    )
    results = stub.Batch(batch).results
    assert [result.WhichOneof("result") for result in results] == ["create_run", "error", "set_step_running", "error", "create_run"]
    assert (results[1].error.code, results[3].error.code) == (grpc.StatusCode.INVALID_ARGUMENT.value[0], grpc.StatusCode.NOT_FOUND.value[0])
    assert (results[1].error.reason, results[3].error.reason) == ("INVALID_ARGUMENT", "MISSING"), results
    stored = db.execute("SELECT input::text FROM workflows_test.runs WHERE workflow = %s ORDER BY input::text", (unique,)).fetchall()
    assert [row[0] for row in stored] == ['{"i": 1}', '{"i": 3}']
    assert db.execute("SELECT status FROM workflows_test.steps WHERE step_id = %s", (step.step_id,)).fetchone()[0] == "running"


def test_an_empty_batch_is_answered_with_no_results(stub) -> None:
    assert list(stub.Batch(pb.BatchRequest()).results) == []


def test_too_many_operations_are_refused_whole(stub, db, unique) -> None:
    operations = [("create_run", pb.CreateRunRequest(workflow=unique))] * 1001  # the default --batch-max-operations is 1000
    code, message = status_of(stub.Batch, _batch(*operations))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "1000" in message and "1001" in message, message
    assert _runs_named(db, unique) == 0
    assert len(stub.Batch(_batch(*operations[:1000])).results) == 1000  # the bound itself is taken
    assert _runs_named(db, unique) == 1000


def test_an_operation_with_nothing_set_refuses_the_batch_whole(stub, db, unique) -> None:
    batch = _batch(("create_run", pb.CreateRunRequest(workflow=unique)))
    batch.operations.add()
    batch.operations.add().create_run.workflow = unique
    code, message = status_of(stub.Batch, batch)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "operations[1]" in message, message
    assert _runs_named(db, unique) == 0


def test_a_batch_over_the_message_size_is_refused_whole(stub, db, unique) -> None:
    # Each operation alone is valid (just under the payload limit); together they pass the server's
    # message bound of 4 payloads + 64 KiB.
    fits = '"' + "x" * (LIMIT - 2) + '"'
    code, _ = status_of(stub.Batch, _batch(*[("create_run", pb.CreateRunRequest(workflow=unique, input_json=fits))] * 5))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _runs_named(db, unique) == 0
    assert len(stub.Batch(_batch(*[("create_run", pb.CreateRunRequest(workflow=unique, input_json=fits))] * 3)).results) == 3


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    cuttable = CuttableProxy(database_url).start()
    yield cuttable
    cuttable.close()


def test_a_batch_under_a_database_outage_answers_unavailable_and_writes_nothing(start_server, proxy, db, unique) -> None:
    server = start_server(url=proxy.url)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        step = new_step(stub, run.run_id)
        batch = _batch(
            ("create_run", pb.CreateRunRequest(workflow=unique)),
            ("set_step_running", pb.SetStepRunningRequest(step_id=step.step_id)),
            ("get_run", pb.GetRunRequest(run_id=run.run_id)),
            ("update_run_status", pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED)),
        )
        proxy.cut()
        results = stub.Batch(batch, timeout=60).results
        assert [(r.WhichOneof("result"), r.error.code) for r in results] == [("error", grpc.StatusCode.UNAVAILABLE.value[0])] * 4, results
        assert {r.error.reason for r in results} == {"UNAVAILABLE"}, results
        proxy.restore()
    assert _runs_named(db, unique, server.schema) == 0
    stored = db.execute(f'SELECT status FROM "{server.schema}".steps WHERE step_id = %s', (step.step_id,)).fetchone()[0]
    assert stored == "pending"
    assert db.execute(f'SELECT status FROM "{server.schema}".runs WHERE run_id = %s', (run.run_id,)).fetchone()[0] == "running"


def test_the_batch_deadline_applies_to_each_operation(stub, db, unique) -> None:
    locked = new_run(stub)
    step = new_step(stub, locked.run_id)
    free = new_run(stub)
    batch = _batch(
        ("update_run_status", pb.UpdateRunStatusRequest(run_id=locked.run_id, status=pb.RUN_STATUS_COMPLETED)),
        ("set_step_running", pb.SetStepRunningRequest(step_id=step.step_id)),
        ("create_run", pb.CreateRunRequest(workflow=unique)),
        ("get_run", pb.GetRunRequest(run_id=free.run_id)),
    )
    with db.transaction():
        db.execute("SELECT FROM workflows_test.runs WHERE run_id = %s FOR UPDATE", (locked.run_id,))
        results = stub.Batch(batch, timeout=1.0).results
        # The server cancelled the waiting statements: nothing waits for our lock any more.
        wait_in_database(db, NOBODY_WAITS_FOR_A_LOCK)
    deadline = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert [(r.WhichOneof("result"), r.error.code) for r in results] == [
        ("error", deadline),
        ("error", deadline),
        ("create_run", 0),
        ("get_run", 0),
    ], results
    # Had the statements lived on, they would have written once our lock went away.
    assert db.execute("SELECT status FROM workflows_test.runs WHERE run_id = %s", (locked.run_id,)).fetchone()[0] == "running"
    assert db.execute("SELECT status FROM workflows_test.steps WHERE step_id = %s", (step.step_id,)).fetchone()[0] == "pending"
    assert _runs_named(db, unique) == 1


def test_operations_wait_for_connections_not_for_the_pool_timeout(start_server, db, unique) -> None:
    # 50 writes to one locked run on a pool of 2 whose timeout is 1 s: started all at once, 48 would
    # queue for a connection while 2 wait on the lock, and be answered RESOURCE_EXHAUSTED after 1 s.
    server = start_server("--pool-size", "2", "--pool-timeout", "1")
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub, unique)
        no_op = pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_RUNNING)
        with db.transaction():
            db.execute(f'SELECT FROM "{server.schema}".runs WHERE run_id = %s FOR UPDATE', (run.run_id,))
            future = stub.Batch.future(_batch(*[("update_run_status", no_op)] * 50), timeout=60)
            wait_in_database(db, SOMEONE_WAITS_FOR_A_LOCK)
            # The lock must outlast the pool timeout: time itself is the condition here.
            db.execute("SELECT pg_sleep(1.5)")
        results = future.result().results
    assert {result.WhichOneof("result") for result in results} == {"update_run_status"}, [r.error for r in results if r.error.code]


def test_batch_operations_are_counted_by_operation_and_code(start_server) -> None:
    server = start_server("--metrics-listen", "127.0.0.1:0")
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        batch = _batch(
            ("get_run", pb.GetRunRequest(run_id=run.run_id)),
            ("get_run", pb.GetRunRequest(run_id=MISSING)),
            ("get_run", pb.GetRunRequest(run_id=run.run_id)),
            ("create_run", pb.CreateRunRequest(workflow="")),
        )
        stub.Batch(batch)
    samples = scrape(metrics_address(server.log_text()))

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("workflowstate_batch_operations_total", operation="GetRun", code="OK") == 2
    assert value("workflowstate_batch_operations_total", operation="GetRun", code="NOT_FOUND") == 1
    assert value("workflowstate_batch_operations_total", operation="CreateRun", code="INVALID_ARGUMENT") == 1
    assert value("workflowstate_rpcs_total", method="Batch", code="OK") == 1
    # The operations are not counted as calls: GetRun was never called on its own.
    assert value("workflowstate_rpcs_total", method="GetRun", code="OK") == 0
    assert value("workflowstate_rpcs_total", method="CreateRun", code="OK") == 1  # new_run

