"""JSON that PostgreSQL would store much larger than it was sent is refused, on every path that stores JSON.

jsonb keeps numbers as numeric and writes them back in plain notation: `1e20000` (7 bytes) is read
back as a 1 followed by 20000 zeros. A limit on the text sent alone let a few bytes store megabytes
that every reader then loads. Each number is bounded as stored (308 digits before the decimal point,
340 after), and the payload limit counts the stored form.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from support.flows import new_run, new_step, scheduled_steps, status_of
from support.task_stream import TaskStream

from workflowstate.server.rpc.stored_json import StoredNumbers, stored_number, stored_size
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

LIMIT = 1024 * 1024  # the server's default payload limit
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXPANDING = '{"x": 1e20000}'  # 14 bytes sent, 20008 bytes as jsonb writes it back
STORED_LENGTH = 20008


def _stored_length(db, text: str) -> int:
    """How many bytes PostgreSQL's jsonb writes back for `text`: what every read of it would return."""
    return db.execute("SELECT octet_length(%s::jsonb::text)", (text,)).fetchone()[0]


def _refused_for_the_number(code: grpc.StatusCode, message: str, field: str) -> None:
    assert code == INVALID, (code, message)
    assert field in message and "308" in message, message


def test_create_run_refuses_an_expanding_input_and_metadata(stub, db, unique) -> None:
    # What the refusals prevent: 14 bytes in, 20008 bytes out of every read.
    assert _stored_length(db, EXPANDING) == STORED_LENGTH
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=EXPANDING))
    _refused_for_the_number(code, message, "input_json")
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json="{}", metadata_json=EXPANDING))
    _refused_for_the_number(code, message, "metadata_json")
    assert db.execute("SELECT count(*) FROM workflows_test.runs WHERE workflow = %s", (unique,)).fetchone()[0] == 0


def test_step_data_result_and_run_output_refuse_expanding_numbers(stub, db) -> None:
    run = new_run(stub)
    request = pb.InsertStepStateRequest(run_id=run.run_id, step_name="s", rpc_name="r", data_json=EXPANDING)
    _refused_for_the_number(*status_of(stub.InsertStepState, request), "data_json")
    step = new_step(stub, run.run_id)
    _refused_for_the_number(*status_of(stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json=EXPANDING)), "result_json")
    output = pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json=EXPANDING)
    _refused_for_the_number(*status_of(stub.UpdateRunStatus, output), "output_json")
    stored = db.execute("SELECT status, result::text FROM workflows_test.steps WHERE step_id = %s", (step.step_id,)).fetchone()
    assert stored == ("pending", None)
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == pb.RUN_STATUS_RUNNING


def test_run_state_schedule_input_and_workflow_version_refuse_expanding_numbers(stub, unique) -> None:
    run = new_run(stub)
    state = pb.UpdateRunStateRequest(run_id=run.run_id, name="n", value_json=EXPANDING)
    _refused_for_the_number(*status_of(stub.UpdateRunState, state), "value_json")
    assert stub.GetRunState(pb.GetRunStateRequest(run_id=run.run_id)).state_json == "{}"
    schedule = pb.CreateScheduleRequest(schedule_id=unique, workflow=unique, cron="0 9 * * *", input_json=EXPANDING)
    _refused_for_the_number(*status_of(stub.CreateSchedule, schedule), "input_json")
    version = pb.UpsertWorkflowVersionRequest(workflow=unique, graph_hash="h1", graph_json=EXPANDING)
    _refused_for_the_number(*status_of(stub.UpsertWorkflowVersion, version), "graph_json")


def test_a_batch_operation_refuses_an_expanding_number(stub, db, unique) -> None:
    operation = pb.BatchOperation(create_run=pb.CreateRunRequest(workflow=unique, input_json=EXPANDING))
    [result] = stub.Batch(pb.BatchRequest(operations=[operation])).results
    assert result.WhichOneof("result") == "error", result
    assert result.error.code == INVALID.value[0], result.error
    assert "input_json" in result.error.message and "308" in result.error.message, result.error.message
    assert db.execute("SELECT count(*) FROM workflows_test.runs WHERE workflow = %s", (unique,)).fetchone()[0] == 0


@pytest.mark.parametrize("bulk", [False, True], ids=["alone", "in-updates"])
def test_a_worker_report_with_an_expanding_result_is_refused(stub, db, rpc, bulk) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], bulk=bulk)
    [step] = scheduled_steps(stub, rpc, 1)
    task = worker.expect("tasks").tasks[0] if bulk else worker.expect("task")
    complete = pb.StepTaskComplete(step_id=task.step_id, attempt=task.attempt, result_json='{"total": 9e99999}')
    if bulk:
        worker.updates(pb.StepTaskUpdate(complete=complete))
        [outcome] = worker.expect("outcomes").outcomes
        refused = outcome.refused
    else:
        worker.send(pb.StreamStepTasksRequest(complete=complete))
        refused = worker.expect("refused")
    assert refused.step_id == step.step_id and refused.code == INVALID.value[0], refused
    assert "complete.result_json" in refused.message and "308" in refused.message, refused.message
    assert (refused.reason, dict(refused.metadata)) == ("INVALID_ARGUMENT", {"field": "complete.result_json", "limit": "308"}), refused
    assert db.execute("SELECT status FROM workflows_test.steps WHERE step_id = %s", (step.step_id,)).fetchone() == ("running",)
    worker.close()


def test_the_payload_limit_counts_the_stored_form(stub, db, unique) -> None:
    # Each 1e300 is a number a double holds (301 digits as stored): allowed alone. 4000 of them are
    # 24 KB sent and 1.2 MB stored, past the 1 MiB limit.
    many = "[" + ",".join(["1e300"] * 4000) + "]"
    assert len(many) < LIMIT < _stored_length(db, many)
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=many))
    assert code == INVALID and "input_json" in message and str(LIMIT) in message, message
    # The same numbers, fewer of them: stored, and read back as PostgreSQL writes them.
    few = "[" + ",".join(["1e300"] * 100) + "]"
    stored = stub.CreateRun(pb.CreateRunRequest(workflow=unique, input_json=few)).run.input_json
    assert len(stored) == _stored_length(db, few) < LIMIT
    # Numbers within the bounds are stored as PostgreSQL writes them.
    text = '{"big": 1e307, "small": 5e-324, "plain": 12.50, "negative": -0.001e2}'
    run = stub.CreateRun(pb.CreateRunRequest(workflow=unique, input_json=text)).run
    assert run.input_json == db.execute("SELECT %s::jsonb::text", (text,)).fetchone()[0]


@pytest.mark.parametrize(
    ("literal", "bound"),
    [("1e131072", "308"), ("-1e-400", "340"), ("1e-16384", "340"), ("0e9999999999", "exponent")],
    ids=["past-numeric-whole-digits", "tiny", "past-numeric-scale", "huge-exponent-of-zero"],
)
def test_numbers_postgresql_cannot_store_are_refused_naming_the_field(stub, unique, literal, bound) -> None:
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=f'{{"x": {literal}}}'))
    assert code == INVALID and "input_json" in message and bound in message, (code, message)


@pytest.mark.parametrize(
    "literal",
    ["0", "-0", "-0.0", "0e5", "0e-5", "12.50", "1.5e3", "120e-1", "1.000e2", "0.001e2", "-0.001e2", "1e-400", "-1E+20", "5e-324", "1e307"],
)
def test_the_stored_length_of_a_number_is_what_postgresql_writes(db, literal) -> None:
    number = stored_number(literal)
    assert number is not None and number.length == _stored_length(db, literal)


@pytest.mark.parametrize(
    "text",
    ['{"b": [1e3, -0.50, "\\u00e9\\n\\/", {"c": null}], "a": true}', "[1e300,1e300]", ' [ 1.5E+2 , "x" ] ', '{"a": {}, "b": []}'],
)
def test_the_stored_size_of_a_document_is_what_postgresql_writes(db, text) -> None:
    numbers = StoredNumbers("input_json")
    parsed = json.loads(text, parse_int=numbers.read, parse_float=numbers.read)
    assert stored_size(parsed, numbers) == _stored_length(db, text)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_an_expanding_request_does_not_blow_up_the_server(start_server) -> None:
    server = start_server()
    assert server.process is not None
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        new_run(stub)  # the server has served a CreateRun before its peak is read
        before = _peak_rss_kib(server.process.pid)
        # 1 KB sent; PostgreSQL's largest numerics, stored, would be 40 MB read into the server.
        text = "[" + ",".join(["1e131071"] * 300) + "]"
        code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow="rss", input_json=text))
        after = _peak_rss_kib(server.process.pid)
    assert after - before < 20 * 1024, f"the server's peak RSS grew from {before} KiB to {after} KiB"
    assert code == INVALID and "input_json" in message, message
