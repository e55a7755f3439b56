"""The engine-state calls of the Python clients, blocking and async, against the real
server: values in and out as Python types, errors as the client's classes, fenced writes through
lease.client. (The server's rules are proven over the raw wire in test_engine_state.py.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone

import pytest

from workflowstate.client import (
    AsyncWorkflowStateClient,
    ClaimedStep,
    FailedPrecondition,
    Failure,
    InvalidArgument,
    NotFound,
    PlannedStep,
    ResourceExhausted,
    RunStatus,
    StepRef,
    StepStatus,
    UpsertedVersion,
    WorkflowStateClient,
    WorkflowVersionStatus,
)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


@pytest.fixture
async def async_client(server_target: str) -> AsyncIterator[AsyncWorkflowStateClient]:
    async with AsyncWorkflowStateClient(server_target) as client:
        yield client


def test_create_run_engine_fields_round_trip(client: WorkflowStateClient) -> None:
    workflow = unique_name("engine")
    run = client.create_run(
        workflow, {"a": 1}, inline=True, graph_hash="g1", metadata={"wire": "http"}, deterministic=True,
        planned_steps=[PlannedStep("a", "First"), PlannedStep("b")],
    )  # fmt: skip
    assert (run.inline, run.graph_hash, run.metadata, run.deterministic) == (True, "g1", {"wire": "http"}, True)
    assert run.planned_steps == (PlannedStep("a", "First"), PlannedStep("b", ""))
    assert client.get_run(run.run_id) == run
    assert next(iter(client.iter_runs(workflow=workflow, full=True))) == run
    plain = client.create_run(workflow)
    assert (plain.inline, plain.graph_hash, plain.metadata, plain.deterministic, plain.planned_steps) == (False, None, None, False, ())


def test_steps_links_claim_and_history_times(client: WorkflowStateClient) -> None:
    run = client.create_run(unique_name("engine"))
    inline = client.insert_step_state(run.run_id, "inline", None, from_step_name="start")
    assert (inline.rpc_name, inline.from_step_name, inline.child_run_id, inline.branch_key) == ("", "start", None, None)
    claimed = client.claim_step(run.run_id, "inline", None)
    assert isinstance(claimed, ClaimedStep) and claimed.claimed and claimed.step.status is StepStatus.RUNNING
    again = client.claim_step(run.run_id, "inline", "")
    assert not again.claimed and again.step == claimed.step
    client.insert_step_state(run.run_id, "remote", "work")
    with pytest.raises(FailedPrecondition) as wrong_function:
        client.claim_step(run.run_id, "remote", "other")
    assert wrong_function.value.reason == "WRONG_RPC"
    assert (wrong_function.value.metadata["rpc_name"], wrong_function.value.metadata["prior_rpc_name"]) == ("other", "work")

    child = client.create_run(unique_name("child"))
    linked = client.set_step_child_run(inline.step_id, child.run_id)
    assert linked.child_run_id == child.run_id
    missing_child = str(uuid.uuid4())
    with pytest.raises(NotFound) as no_child:
        client.set_step_child_run(inline.step_id, missing_child)
    assert (no_child.value.reason, no_child.value.metadata["child_run_id"]) == ("MISSING_CHILD", missing_child)
    assert client.set_step_branch(inline.step_id, "yes").branch_key == "yes"
    suspended = client.set_step_suspended(inline.step_id)
    assert suspended.status is StepStatus.SUSPENDED
    client.set_step_error(inline.step_id, Failure("no"))
    [attempt] = [a for a in client.get_run_history(run.run_id) if a.step_name == "inline"]
    assert attempt.status is StepStatus.FAILED
    assert attempt.running_time is not None and attempt.failed_time is not None
    assert attempt.scheduled_time is None and attempt.succeeded_time is None


def test_run_suspend_and_state(client: WorkflowStateClient) -> None:
    run = client.create_run(unique_name("engine"))
    suspended = client.update_run_status(run.run_id, RunStatus.SUSPENDED, error=Failure("awaiting approval"))
    assert suspended.status is RunStatus.SUSPENDED and suspended.error == Failure("awaiting approval")
    assert client.get_run_state(run.run_id) == {}
    client.update_run_state(run.run_id, "a.b", [1, 2])
    client.update_run_state(run.run_id, "none", None)
    assert client.get_run_state(run.run_id) == {"a.b": [1, 2], "none": None}
    client.update_run_state(run.run_id, "big", "x" * (600 * 1024))
    with pytest.raises(ResourceExhausted) as too_large:
        client.update_run_state(run.run_id, "bigger", "x" * (600 * 1024))
    assert (too_large.value.reason, too_large.value.metadata["run_id"]) == ("TOO_LARGE", run.run_id)
    assert set(client.get_run_state(run.run_id)) == {"a.b", "none", "big"}
    resumed = client.update_run_status(run.run_id, RunStatus.COMPLETED)
    assert resumed.status is RunStatus.COMPLETED and resumed.error is None
    with pytest.raises(FailedPrecondition) as finished:
        client.update_run_state(run.run_id, "late", 1)
    assert (finished.value.reason, finished.value.metadata["run_status"]) == ("FINISHED_RUN", "COMPLETED")
    summary = [s for s in client.list_workflows() if s.workflow == run.workflow]
    assert summary[0].run_counts == {
        RunStatus.RUNNING: 0, RunStatus.COMPLETED: 1, RunStatus.FAILED: 0, RunStatus.CANCELLED: 0, RunStatus.SUSPENDED: 0,
    }  # fmt: skip


def test_workflow_versions(client: WorkflowStateClient) -> None:
    workflow = unique_name("versions")
    made = client.upsert_workflow_version(workflow, "h1", {"nodes": []}, source="dsl", status=WorkflowVersionStatus.DRAFT)
    assert isinstance(made, UpsertedVersion) and made.created
    assert (made.version.graph, made.version.source, made.version.status) == ({"nodes": []}, "dsl", WorkflowVersionStatus.DRAFT)
    kept = client.upsert_workflow_version(workflow, "h1", {"nodes": ["other"]})
    assert not kept.created and kept.version == made.version
    active = client.update_workflow_version_status(workflow, "h1", WorkflowVersionStatus.ACTIVE)
    assert active.status is WorkflowVersionStatus.ACTIVE
    assert client.get_workflow_version(workflow, "h1") == active
    with pytest.raises(FailedPrecondition) as back_to_draft:
        client.update_workflow_version_status(workflow, "h1", WorkflowVersionStatus.DRAFT)
    refused = back_to_draft.value
    assert (refused.reason, refused.metadata["prior_status"], refused.metadata["target_status"]) == ("ILLEGAL_TRANSITION", "ACTIVE", "DRAFT")
    with pytest.raises(NotFound) as unknown:
        client.get_workflow_version(workflow, "nope")
    assert (unknown.value.reason, unknown.value.metadata) == ("MISSING", {"workflow": workflow, "graph_hash": "nope"})
    assert client.upsert_workflow_version(workflow, "h2", None).version.status is WorkflowVersionStatus.ACTIVE


def test_engine_lists(start_server) -> None:
    # A server of its own: the session's schema holds the other tests' idle runs, more than one
    # page of them, oldest first, so this test's run would not be in the first 1000.
    with WorkflowStateClient(start_server().target) as client:
        _check_engine_lists(client)


def _check_engine_lists(client: WorkflowStateClient) -> None:
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert client.list_stalled_runs(long_ago) == []
    assert client.list_undispatched_steps(long_ago, max_steps=5) == []
    run = client.create_run(unique_name("engine"))
    step = client.insert_step_state(run.run_id, "s", "work")
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert run.run_id in client.list_stalled_runs(later, max_runs=1000)
    assert StepRef(run.run_id, step.step_id) in client.list_undispatched_steps(later, max_steps=1000)
    with pytest.raises(InvalidArgument, match="max_runs"):
        client.list_stalled_runs(later, max_runs=0)
    with pytest.raises(ValueError, match="naive"):
        client.list_undispatched_steps(datetime(2000, 1, 1))


def test_lease_client_fences_the_engine_writes(client: WorkflowStateClient) -> None:
    run = client.create_run(unique_name("engine"))
    step = client.insert_step_state(run.run_id, "s", "work")
    with client.run_lock(run.run_id) as lease:
        fenced = lease.client
        assert fenced.claim_step(run.run_id, "s", "work").claimed
        fenced.set_step_branch(step.step_id, "left")
        fenced.set_step_child_run(step.step_id, run.run_id)
        fenced.update_run_state(run.run_id, "k", "v")
        assert fenced.set_step_suspended(step.step_id).status is StepStatus.SUSPENDED
    assert client.get_run_state(run.run_id) == {"k": "v"}


async def test_async_client_engine_calls(async_client: AsyncWorkflowStateClient) -> None:
    client = async_client
    run = await client.create_run(unique_name("engine"), metadata=[1], planned_steps=[PlannedStep("a")])
    assert (run.metadata, run.planned_steps) == ([1], (PlannedStep("a"),))
    await client.insert_step_state(run.run_id, "s", "work")
    claims = await asyncio.gather(*(client.claim_step(run.run_id, "s", "work") for _ in range(5)))
    assert sum(claim.claimed for claim in claims) == 1
    await asyncio.gather(*(client.update_run_state(run.run_id, f"v{i}", i) for i in range(5)))
    assert await client.get_run_state(run.run_id) == {f"v{i}": i for i in range(5)}
    workflow = unique_name("versions")
    assert (await client.upsert_workflow_version(workflow, "h", {})).created
    assert (await client.get_workflow_version(workflow, "h")).status is WorkflowVersionStatus.ACTIVE
    declined = await client.update_workflow_version_status(workflow, "h", WorkflowVersionStatus.DECLINED)
    assert declined.status is WorkflowVersionStatus.DECLINED
    assert await client.list_stalled_runs(datetime(2000, 1, 1, tzinfo=timezone.utc)) == []
