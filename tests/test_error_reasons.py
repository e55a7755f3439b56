"""Every refusal names its reason on the wire: a google.rpc.ErrorInfo in the status details (domain
'workflowstate', reason the refusal's name, metadata the context its message gives), read here from
the raw trailing metadata and through the Python client. One test per family of reasons."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from support.flows import new_run, new_step, reason_of
from support.lease_stream import LeaseStream

from workflowstate.client import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, RunStatus, WorkflowStateClient
from workflowstate import v1 as pb

TEN_S = timedelta(seconds=10)


def test_a_stale_fencing_token_is_refused_as_stale_fence_naming_the_current_token(stub) -> None:
    run = new_run(stub)
    key = f"run:{run.run_id}"
    stream = LeaseStream(stub)
    stream.acquire(key, TEN_S, timedelta(0))
    token = stream.expect("granted").fencing_token
    request = pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, fencing_token=token + 1)
    code, reason, domain, metadata = reason_of(stub.UpdateRunStatus, request)
    assert (code, reason, domain) == (grpc.StatusCode.FAILED_PRECONDITION, "STALE_FENCE", "workflowstate")
    assert metadata["lease_key"] == key
    assert metadata["current_token"] == str(token)
    assert metadata["fence_token"] == str(token + 1)
    assert metadata["run_id"] == run.run_id
    stream.close()


def test_a_finished_run_refuses_a_status_as_finished_run_with_its_status(stub) -> None:
    run = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED))
    request = pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure(message="late"))
    code, reason, _, metadata = reason_of(stub.UpdateRunStatus, request)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FINISHED_RUN")
    assert metadata["prior_status"] == "COMPLETED"
    assert metadata["target_status"] == "FAILED"


def test_a_move_the_transition_table_lacks_is_refused_as_illegal_transition(stub) -> None:
    run = new_run(stub)
    step = new_step(stub, run.run_id, "charge")
    stub.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json="1"))
    code, reason, _, metadata = reason_of(stub.SetStepScheduled, pb.SetStepScheduledRequest(step_id=step.step_id))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION")
    assert (metadata["step_id"], metadata["prior_status"], metadata["target_status"]) == (step.step_id, "SUCCEEDED", "SCHEDULED")


def test_a_step_that_does_not_exist_is_refused_as_missing(stub) -> None:
    step_id = str(uuid.uuid4())
    code, reason, _, metadata = reason_of(stub.SetStepRunning, pb.SetStepRunningRequest(step_id=step_id))
    assert (code, reason, metadata["step_id"]) == (grpc.StatusCode.NOT_FOUND, "MISSING", step_id)


def test_a_second_step_of_the_same_name_is_refused_as_duplicate_name(stub) -> None:
    run = new_run(stub)
    new_step(stub, run.run_id, "charge")
    request = pb.InsertStepStateRequest(run_id=run.run_id, step_name="charge", rpc_name="doWork", data_json="{}")
    code, reason, _, metadata = reason_of(stub.InsertStepState, request)
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_NAME")
    assert (metadata["run_id"], metadata["step_name"]) == (run.run_id, "charge")


def test_bad_input_is_refused_as_invalid_argument_naming_the_field(stub) -> None:
    code, reason, _, metadata = reason_of(stub.GetRun, pb.GetRunRequest(run_id="not-a-uuid"))
    assert (code, reason, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", {"field": "run_id"})


def test_a_name_past_its_bound_names_the_field_and_the_limit(stub) -> None:
    code, reason, _, metadata = reason_of(stub.CreateRun, pb.CreateRunRequest(workflow="w" * 10_000, input_json="{}"))
    assert (code, reason, metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", "workflow")
    assert int(metadata["limit"]) < 10_000


@pytest.fixture
def client(server_target: str):
    with WorkflowStateClient(server_target) as client:
        yield client


def test_the_python_client_exposes_reason_and_metadata(client: WorkflowStateClient) -> None:
    run = client.create_run(f"wf-{uuid.uuid4().hex[:8]}", {"n": 1})
    client.update_run_status(run.run_id, RunStatus.COMPLETED, output={"ok": True})
    with pytest.raises(FailedPrecondition) as refused:
        client.update_run_status(run.run_id, RunStatus.RUNNING)
    assert refused.value.reason == "FINISHED_RUN"
    assert refused.value.metadata["prior_status"] == "COMPLETED"
    with pytest.raises(NotFound) as missing:
        client.set_step_running(str(uuid.uuid4()))
    assert missing.value.reason == "MISSING"
    client_run = client.create_run(f"wf-{uuid.uuid4().hex[:8]}", {"n": 1})
    client.insert_step_state(client_run.run_id, "charge", "doWork", {})
    with pytest.raises(AlreadyExists) as duplicate:
        client.insert_step_state(client_run.run_id, "charge", "doWork", {})
    assert (duplicate.value.reason, duplicate.value.metadata["step_name"]) == ("DUPLICATE_NAME", "charge")
    with pytest.raises(InvalidArgument) as bad:
        client.get_run("not-a-uuid")
    assert (bad.value.reason, bad.value.metadata) == ("INVALID_ARGUMENT", {"field": "run_id"})
