"""Every kind of bad input gets INVALID_ARGUMENT (or the right other code), a message naming the
field, and leaves nothing written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from support.flows import new_run, new_step, reason_of, refusal_of, status_of, step_in
from support.invalid_fields import InvalidArgumentFields

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

LIMIT = 1024 * 1024  # the server's default payload limit
INVALID = grpc.StatusCode.INVALID_ARGUMENT
MISSING = str(uuid.UUID(int=0))


@pytest.fixture
def stub(server_target: str) -> Iterator[pb_grpc.WorkflowStateServiceStub]:
    """The raw stub, through a channel that notes every INVALID_ARGUMENT: each test of this file ends
    by checking that every one of them named the wrong field in its ErrorInfo (a program must not
    have to parse the message to learn which field it was)."""
    fields = InvalidArgumentFields()
    with grpc.insecure_channel(server_target) as channel:
        yield pb_grpc.WorkflowStateServiceStub(grpc.intercept_channel(channel, fields))
    assert fields.without_field() == [], "INVALID_ARGUMENT without a field in its ErrorInfo"


def _runs_named(db, schema: str, workflow: str) -> int:
    return db.execute(f'SELECT count(*) FROM "{schema}".runs WHERE workflow = %s', (workflow,)).fetchone()[0]


@pytest.mark.parametrize(
    ("input_json", "why"),
    [
        ('{"a": ', "not valid JSON"),
        ("{'a': 1}", "not valid JSON"),
        ("NaN", "not valid JSON"),
        ('{"a": Infinity}', "not valid JSON"),
        ('{"a": "\\u0000"}', "\\u0000"),
        ('{"\\u0000": 1}', "\\u0000"),
        ('"\\ud800"', "surrogate"),
        ("1 2", "not valid JSON"),
    ],
)
def test_create_run_refuses_bad_json(stub, db, unique, input_json: str, why: str) -> None:
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=input_json))
    assert code == INVALID
    assert "input_json" in message and why in message, message
    assert _runs_named(db, "workflows_test", unique) == 0


def test_payload_over_the_limit(stub, db, unique) -> None:
    big = '"' + "x" * LIMIT + '"'
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=big))
    assert code == INVALID and "input_json" in message and str(LIMIT) in message, message
    assert _runs_named(db, "workflows_test", unique) == 0
    # Just under the limit is stored as sent.
    fits = '"' + "x" * (LIMIT - 2) + '"'
    assert stub.CreateRun(pb.CreateRunRequest(workflow=unique, input_json=fits)).run.input_json == fits


def test_multibyte_payload_is_measured_in_bytes(stub, unique) -> None:
    # 400k three-byte characters: under the limit in characters, over it in bytes.
    text = '"' + "€" * 400_000 + '"'
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=text))
    assert code == INVALID and "input_json" in message, message


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"workflow": ""}, "workflow"),
        ({"workflow": "w" * 257}, "workflow"),
        ({"workflow": "a\x00b"}, "workflow"),
        ({"workflow": "ok", "request_id": "r" * 257}, "request_id"),
    ],
)
def test_create_run_refuses_bad_names(stub, request_fields: dict, field: str) -> None:
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(**request_fields))
    assert code == INVALID and field in message, message


def test_names_at_the_limit_are_accepted(stub) -> None:
    name = "w" * 256
    run = stub.CreateRun(pb.CreateRunRequest(workflow=name)).run
    assert run.workflow == name
    assert run.input_json == "null"  # empty input means JSON null


@pytest.mark.parametrize("bad_id", ["", "not-a-uuid", "1234", MISSING + "0", "'; DROP TABLE runs; --"])
def test_bad_uuids(stub, bad_id: str) -> None:
    calls = [
        (stub.GetRun, pb.GetRunRequest(run_id=bad_id), "run_id"),
        (stub.GetRunHistory, pb.GetRunHistoryRequest(run_id=bad_id), "run_id"),
        (stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=bad_id, status=pb.RUN_STATUS_COMPLETED), "run_id"),
        (stub.InsertStepState, pb.InsertStepStateRequest(run_id=bad_id, step_name="s", rpc_name="r"), "run_id"),
        (stub.GetStepState, pb.GetStepStateRequest(run_id=bad_id, step_name="s"), "run_id"),
        (stub.SetStepScheduled, pb.SetStepScheduledRequest(step_id=bad_id), "step_id"),
        (stub.SetStepRunning, pb.SetStepRunningRequest(step_id=bad_id), "step_id"),
        (stub.SetStepResult, pb.SetStepResultRequest(step_id=bad_id), "step_id"),
        (stub.SetStepError, pb.SetStepErrorRequest(step_id=bad_id, error=pb.Failure(message="x")), "step_id"),
        (stub.CreateRetryAttempt, pb.CreateRetryAttemptRequest(step_id=bad_id, status=pb.STEP_STATUS_PENDING), "step_id"),
    ]
    for call, request, field in calls:
        code, message = status_of(call, request)
        assert code == INVALID, (call, code, message)
        assert field in message, message


def test_missing_things_are_not_found_and_named_missing_with_their_id(stub) -> None:
    # Reads, deletes and writes alike: the reason MISSING, with the id the request named (and the step name).
    calls = [
        (stub.GetRun, pb.GetRunRequest(run_id=MISSING), "run_id"),
        (stub.GetRunHistory, pb.GetRunHistoryRequest(run_id=MISSING), "run_id"),
        (stub.ListSteps, pb.ListStepsRequest(run_id=MISSING), "run_id"),
        (stub.GetRunState, pb.GetRunStateRequest(run_id=MISSING), "run_id"),
        (stub.DeleteRun, pb.DeleteRunRequest(run_id=MISSING), "run_id"),
        (stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=MISSING, status=pb.RUN_STATUS_COMPLETED), "run_id"),
        (stub.InsertStepState, pb.InsertStepStateRequest(run_id=MISSING, step_name="s", rpc_name="r"), "run_id"),
        (stub.GetStepState, pb.GetStepStateRequest(run_id=MISSING, step_name="s"), "run_id"),
        (stub.SetStepScheduled, pb.SetStepScheduledRequest(step_id=MISSING), "step_id"),
        (stub.SetStepRunning, pb.SetStepRunningRequest(step_id=MISSING), "step_id"),
        (stub.SetStepResult, pb.SetStepResultRequest(step_id=MISSING, result_json="1"), "step_id"),
        (stub.SetStepError, pb.SetStepErrorRequest(step_id=MISSING, error=pb.Failure(message="x")), "step_id"),
        (stub.CreateRetryAttempt, pb.CreateRetryAttemptRequest(step_id=MISSING, status=pb.STEP_STATUS_PENDING), "step_id"),
    ]
    for call, request, id_field in calls:
        refused = refusal_of(call, request)
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "MISSING"), (call, refused)
        assert refused.metadata[id_field] == MISSING and MISSING in refused.message, (call, refused)


def test_unknown_step_name_is_missing_with_the_run_and_step_name(stub) -> None:
    run = new_run(stub)
    code, reason, _, metadata = reason_of(stub.GetStepState, pb.GetStepStateRequest(run_id=run.run_id, step_name="nope"))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "MISSING"), metadata
    assert (metadata["run_id"], metadata["step_name"]) == (run.run_id, "nope"), metadata


@pytest.mark.parametrize("status", [pb.RUN_STATUS_UNSPECIFIED, 17, -1])
def test_run_status_must_be_known(stub, status: int) -> None:
    run = new_run(stub)
    code, message = status_of(stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run.run_id, status=status))
    assert code == INVALID and "status" in message, message
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == pb.RUN_STATUS_RUNNING


def test_update_run_status_checks_output_and_error(stub) -> None:
    run = new_run(stub)
    for request, field in [
        (pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json="{"), "output_json"),
        (pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure()), "error.message"),
        (pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure(message="a\x00")), "error.message"),
        (
            pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure(message="m", stack="s" * (LIMIT + 1))),
            "error",
        ),
    ]:
        code, message = status_of(stub.UpdateRunStatus, request)
        assert code == INVALID and field in message, message
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == pb.RUN_STATUS_RUNNING


def test_insert_step_checks_every_field(stub, db) -> None:
    run = new_run(stub)
    good = {"run_id": run.run_id, "step_name": "s", "rpc_name": "r", "data_json": "{}"}
    cases = [
        ({"step_name": ""}, "step_name"),
        ({"step_name": "s" * 257}, "step_name"),
        # An empty rpc_name is allowed (a step without a function of its own: tests/test_engine_state.py).
        ({"rpc_name": "r" * 257}, "rpc_name"),
        ({"rpc_name": "a\x00b"}, "rpc_name"),
        ({"from_step_name": "f" * 257}, "from_step_name"),
        ({"from_step_name": "a\x00b"}, "from_step_name"),
        ({"data_json": "[1,"}, "data_json"),
        ({"options": pb.StepOptions(retries=-1)}, "retries"),
        ({"options": pb.StepOptions(retry_delay=Duration(seconds=-5))}, "retry_delay"),
        ({"options": pb.StepOptions(retry_delay=Duration(seconds=1, nanos=-5))}, "retry_delay"),
    ]
    for override, field in cases:
        code, message = status_of(stub.InsertStepState, pb.InsertStepStateRequest(**{**good, **override}))
        assert code == INVALID and field in message, (override, message)
    history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
    assert list(history) == []
    count = db.execute('SELECT count(*) FROM workflows_test.steps WHERE run_id = %s', (run.run_id,)).fetchone()[0]
    assert count == 0


def test_duplicate_step_is_already_exists(stub) -> None:
    run = new_run(stub)
    first = new_step(stub, run.run_id, "once", retries=1)
    code, reason, _, metadata = reason_of(
        stub.InsertStepState, pb.InsertStepStateRequest(run_id=run.run_id, step_name="once", rpc_name="other")
    )
    assert (code, reason, metadata["step_name"]) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_NAME", "once")
    kept = stub.GetStepState(pb.GetStepStateRequest(run_id=run.run_id, step_name="once")).step
    assert kept == first


def test_step_writes_check_their_payloads(stub) -> None:
    step = step_in(stub, [pb.STEP_STATUS_RUNNING])
    for call, request, field in [
        (stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json="{"), "result_json"),
        (stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json='"\\u0000"'), "result_json"),
        (stub.SetStepError, pb.SetStepErrorRequest(step_id=step.step_id), "error"),
        (stub.SetStepError, pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(stack="s")), "error.message"),
        (stub.SetStepError, pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="m", code="\x00")), "error.code"),
    ]:
        code, message = status_of(call, request)
        assert code == INVALID and field in message, message
    after = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert after.status == pb.STEP_STATUS_RUNNING and not after.HasField("result_json") and not after.HasField("error")


def test_idempotency_key_reused_for_another_request(stub, unique) -> None:
    first = stub.CreateRun(pb.CreateRunRequest(workflow=unique, input_json='{"a": 1}', request_id=unique)).run
    again = stub.CreateRun(pb.CreateRunRequest(workflow=unique, input_json='{ "a":1 }', request_id=unique)).run
    assert again == first
    for other in (
        pb.CreateRunRequest(workflow=unique, input_json='{"a": 2}', request_id=unique),
        pb.CreateRunRequest(workflow=unique + "x", input_json='{"a": 1}', request_id=unique),
    ):
        code, message = status_of(stub.CreateRun, other)
        assert code == grpc.StatusCode.ALREADY_EXISTS and unique in message and first.run_id in message


def test_oversized_message_is_refused_by_grpc_not_internal(stub, unique) -> None:
    huge = '"' + "x" * (6 * LIMIT) + '"'
    code, _ = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, input_json=huge))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
