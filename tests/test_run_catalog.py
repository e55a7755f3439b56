"""ListSteps and ListWorkflows over the wire: what they return, in which order, and their codes."""

from __future__ import annotations

import uuid

import grpc
import pytest
from support.flows import move_step, new_run, new_step, refusal_of, status_of

from workflowstate.client import AsyncWorkflowStateClient, NotFound, RunStatus, StepStatus, WorkflowStateClient
from workflowstate import v1 as pb


def test_list_steps_returns_every_step_in_insertion_order_at_its_current_attempt(stub) -> None:
    run = new_run(stub)
    # Names out of alphabetical order, so an order by name or id would show.
    names = ["zeta", "alpha", "mid", "beta"]
    steps = [new_step(stub, run.run_id, name, retries=2) for name in names]
    move_step(stub, steps[1].step_id, pb.STEP_STATUS_FAILED)
    stub.CreateRetryAttempt(pb.CreateRetryAttemptRequest(step_id=steps[1].step_id, status=pb.STEP_STATUS_RUNNING))
    move_step(stub, steps[2].step_id, pb.STEP_STATUS_SCHEDULED)

    listed = stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id)).steps
    assert [step.step_name for step in listed] == names
    by_name = {step.step_name: step for step in listed}
    assert by_name["alpha"].attempt_count == 2 and by_name["alpha"].status == pb.STEP_STATUS_RUNNING
    assert by_name["alpha"].HasField("running_time") and by_name["alpha"].rpc_name == "doWork"
    assert by_name["mid"].status == pb.STEP_STATUS_SCHEDULED and by_name["mid"].HasField("scheduled_time")
    for step in listed:
        assert step == stub.GetStepState(pb.GetStepStateRequest(run_id=run.run_id, step_name=step.step_name)).step


def test_list_steps_of_a_run_without_steps_is_empty_and_of_an_unknown_run_not_found(stub) -> None:
    run = new_run(stub)
    assert list(stub.ListSteps(pb.ListStepsRequest(run_id=run.run_id)).steps) == []
    missing = str(uuid.uuid4())
    refused = refusal_of(stub.ListSteps, pb.ListStepsRequest(run_id=missing))
    assert (refused.code, refused.reason, refused.metadata) == (grpc.StatusCode.NOT_FOUND, "MISSING", {"run_id": missing}), refused
    assert missing in refused.message, refused


@pytest.mark.parametrize(("run_id", "says"), [("", "run_id is required"), ("nope", "run_id is not a valid UUID")])
def test_list_steps_refuses_a_bad_run_id(stub, run_id: str, says: str) -> None:
    code, message = status_of(stub.ListSteps, pb.ListStepsRequest(run_id=run_id))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and says in message


def test_list_workflows_counts_the_runs_of_each_workflow_per_status(stub) -> None:
    first, second = f"wf-a-{uuid.uuid4().hex[:8]}", f"wf-b-{uuid.uuid4().hex[:8]}"
    runs = [new_run(stub, first) for _ in range(3)] + [new_run(stub, second)]
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=runs[0].run_id, status=pb.RUN_STATUS_COMPLETED))
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=runs[1].run_id, status=pb.RUN_STATUS_CANCELLED))

    workflows = stub.ListWorkflows(pb.ListWorkflowsRequest()).workflows
    names = [summary.workflow for summary in workflows]
    assert names == sorted(names) and len(names) == len(set(names))
    counts = {summary.workflow: {entry.status: entry.run_count for entry in summary.run_counts} for summary in workflows}
    assert counts[first] == {
        pb.RUN_STATUS_RUNNING: 1, pb.RUN_STATUS_COMPLETED: 1, pb.RUN_STATUS_FAILED: 0, pb.RUN_STATUS_CANCELLED: 1, pb.RUN_STATUS_SUSPENDED: 0,
    }  # fmt: skip
    assert counts[second] == {
        pb.RUN_STATUS_RUNNING: 1, pb.RUN_STATUS_COMPLETED: 0, pb.RUN_STATUS_FAILED: 0, pb.RUN_STATUS_CANCELLED: 0, pb.RUN_STATUS_SUSPENDED: 0,
    }  # fmt: skip


def test_the_clients_list_steps_and_workflows(server_target: str) -> None:
    workflow = f"wf-c-{uuid.uuid4().hex[:8]}"
    with WorkflowStateClient(server_target) as client:
        run = client.create_run(workflow, 1)
        client.insert_step_state(run.run_id, "b", "rpcB")
        client.insert_step_state(run.run_id, "a", "rpcA")
        steps = client.list_steps(run.run_id)
        assert [(step.step_name, step.rpc_name, step.status) for step in steps] == [("b", "rpcB", StepStatus.PENDING), ("a", "rpcA", StepStatus.PENDING)]
        with pytest.raises(NotFound) as missing_run:
            client.list_steps(str(uuid.uuid4()))
        assert (missing_run.value.reason, set(missing_run.value.metadata)) == ("MISSING", {"run_id"})
        [summary] = [summary for summary in client.list_workflows() if summary.workflow == workflow]
        assert summary.run_counts == {
            RunStatus.RUNNING: 1, RunStatus.COMPLETED: 0, RunStatus.FAILED: 0, RunStatus.CANCELLED: 0, RunStatus.SUSPENDED: 0,
        }  # fmt: skip


async def test_the_async_client_lists_steps(server_target: str) -> None:
    async with AsyncWorkflowStateClient(server_target) as client:
        run = await client.create_run("wf-async-steps")
        await client.insert_step_state(run.run_id, "only", "rpc")
        assert [step.step_name for step in await client.list_steps(run.run_id)] == ["only"]
        assert any(summary.workflow == "wf-async-steps" for summary in await client.list_workflows())
