"""Engine state over the wire: a run's engine fields, steps without a function, step
links (from, child run, branch), ClaimStep, run state variables, each attempt's times, and the
stalled-run and undispatched-step reads. Each rule with its code, and nothing written when
refused; races are run for real."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from support.flows import history_of, move_step, new_run, new_step, reason_of, refusal_of, scheduled_steps, status_of
from support.task_stream import TaskStream

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

PENDING, SCHEDULED, RUNNING, SUCCEEDED, FAILED, SUSPENDED = (
    pb.STEP_STATUS_PENDING, pb.STEP_STATUS_SCHEDULED, pb.STEP_STATUS_RUNNING, pb.STEP_STATUS_SUCCEEDED,
    pb.STEP_STATUS_FAILED, pb.STEP_STATUS_SUSPENDED,
)  # fmt: skip
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND
LIMIT = 1024 * 1024  # the server's default payload limit
MISSING = str(uuid.UUID(int=0))


def _read(stub, step: pb.StepState) -> pb.StepState:
    return stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step


def _race(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run call(0..count-1) in threads released together; their results (or errors) in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except grpc.RpcError as err:
            results[i] = err

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# CreateRun's engine fields.


def test_create_run_keeps_the_engine_fields(stub, unique) -> None:
    planned = [pb.PlannedStep(step_name="a", display_name="First"), pb.PlannedStep(step_name="b")]
    request = pb.CreateRunRequest(
        workflow=unique, input_json="{}", inline=True, graph_hash="h-1", metadata_json='{"wire": {"type": "http"}}',
        deterministic=True, planned_steps=planned,
    )  # fmt: skip
    run = stub.CreateRun(request).run
    for got in (run, stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run):
        assert (got.inline, got.graph_hash, got.deterministic) == (True, "h-1", True)
        assert json.loads(got.metadata_json) == {"wire": {"type": "http"}}
        assert [(p.step_name, p.display_name) for p in got.planned_steps] == [("a", "First"), ("b", "")]
    full = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=unique), view=pb.RUN_VIEW_FULL)).runs[0]
    assert full == run
    basic = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=unique))).runs[0]
    assert (basic.inline, basic.graph_hash, basic.deterministic) == (True, "h-1", True)
    assert not basic.HasField("metadata_json") and not basic.planned_steps, "BASIC leaves the payloads out"


def test_create_run_without_engine_fields_has_none(stub) -> None:
    run = new_run(stub)
    assert (run.inline, run.graph_hash, run.deterministic, list(run.planned_steps)) == (False, "", False, [])
    assert not run.HasField("metadata_json")
    null = stub.CreateRun(pb.CreateRunRequest(workflow="wf", metadata_json="null")).run
    assert null.HasField("metadata_json") and null.metadata_json == "null", "JSON null is metadata, empty is none"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"graph_hash": "h" * 257}, "graph_hash"),
        ({"metadata_json": "{"}, "metadata_json"),
        ({"metadata_json": '"' + "x" * LIMIT + '"'}, "metadata_json"),
        ({"planned_steps": [pb.PlannedStep(step_name="")]}, "planned_steps[0].step_name"),
        ({"planned_steps": [pb.PlannedStep(step_name="a"), pb.PlannedStep(step_name="b" * 257)]}, "planned_steps[1].step_name"),
        ({"planned_steps": [pb.PlannedStep(step_name="a", display_name="d" * 257)]}, "planned_steps[0].display_name"),
        ({"planned_steps": [pb.PlannedStep(step_name=f"s{i}") for i in range(1001)]}, "planned_steps"),
    ],
    ids=["graph_hash", "metadata", "metadata-size", "step-name", "step-name-long", "display-name", "too-many"],
)
def test_create_run_refuses_bad_engine_fields(stub, db, unique, fields: dict, field: str) -> None:
    code, message = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique, **fields))
    assert code == INVALID and field in message, message
    assert db.execute("SELECT count(*) FROM workflows_test.runs WHERE workflow = %s", (unique,)).fetchone()[0] == 0


def test_a_thousand_planned_steps_are_accepted(stub) -> None:
    planned = [pb.PlannedStep(step_name=f"s{i}") for i in range(1000)]
    run = stub.CreateRun(pb.CreateRunRequest(workflow="wf", deterministic=True, planned_steps=planned)).run
    assert len(run.planned_steps) == 1000


# Steps without a function, and their edges.


def test_a_step_without_a_function_is_never_dispatched(stub, rpc) -> None:
    run = new_run(stub)
    inline = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name="inline", from_step_name="start")).step
    assert (inline.rpc_name, inline.from_step_name, inline.status) == ("", "start", PENDING)
    stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=inline.step_id))
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [marker] = scheduled_steps(stub, rpc, 1)
    assert worker.expect("task").step_id == marker.step_id
    assert _read(stub, inline).status == SCHEDULED
    worker.cancel()
    # An empty worker rpc name is refused, so no worker ever subscribes to steps without one.
    refused = TaskStream(stub)
    refused.send(pb.StreamStepTasksRequest(subscribe=pb.StepTaskSubscribe(worker_id="w", rpc_names=[""], max_in_flight=1)))
    answer = refused.next()
    assert isinstance(answer, grpc.RpcError) and answer.code() == INVALID, answer


# ClaimStep.


def _claim(stub, step: pb.StepState, rpc_name: str = "doWork") -> pb.ClaimStepResponse:
    return stub.ClaimStep(pb.ClaimStepRequest(run_id=step.run_id, step_name=step.step_name, rpc_name=rpc_name))


def _step_in(stub, statuses: list[int]) -> pb.StepState:
    step = new_step(stub, new_run(stub).run_id)
    for status in statuses:
        step = stub.SetStepSuspended(pb.SetStepSuspendedRequest(step_id=step.step_id)).step if status == SUSPENDED else move_step(stub, step.step_id, status)
    return step


@pytest.mark.parametrize("source", [PENDING, SCHEDULED], ids=["pending", "scheduled"])
def test_claim_step_takes_a_step_not_started(stub, source: int) -> None:
    step = _step_in(stub, [] if source == PENDING else [SCHEDULED])
    claimed = _claim(stub, step)
    assert claimed.claimed and claimed.step.status == RUNNING and claimed.step.attempt_count == 1
    assert claimed.step.HasField("running_time") and not claimed.step.HasField("not_before")
    [attempt] = history_of(stub, step.run_id, step.step_name)
    assert attempt.status == RUNNING and attempt.running_time == claimed.step.running_time


def test_claim_step_starts_the_next_attempt_of_a_failed_step(stub) -> None:
    step = _step_in(stub, [RUNNING, FAILED])
    claimed = _claim(stub, step)
    assert claimed.claimed and (claimed.step.status, claimed.step.attempt_count) == (RUNNING, 2)
    assert not claimed.step.HasField("error") and not claimed.step.HasField("failed_time")
    first, second = history_of(stub, step.run_id, step.step_name)
    assert (first.status, second.status, second.attempt) == (FAILED, RUNNING, 2)
    assert second.HasField("running_time") and not second.HasField("failed_time")


@pytest.mark.parametrize("path", [[RUNNING], [SUSPENDED], [SUCCEEDED]], ids=["running", "suspended", "succeeded"])
def test_claim_step_leaves_a_step_running_suspended_or_succeeded(stub, path: list[int]) -> None:
    step = _step_in(stub, path)
    before = _read(stub, step)
    claimed = _claim(stub, step)
    assert not claimed.claimed and claimed.step == before
    assert _read(stub, step) == before and len(history_of(stub, step.run_id, step.step_name)) == 1


def test_claim_step_refuses_another_function(stub) -> None:
    step = _step_in(stub, [])
    code, reason, _, details = reason_of(stub.ClaimStep, pb.ClaimStepRequest(run_id=step.run_id, step_name=step.step_name, rpc_name="other"))
    assert (code, reason, details["prior_rpc_name"], details["rpc_name"]) == (PRECONDITION, "WRONG_RPC", "doWork", "other")
    assert _read(stub, step) == step
    inline = stub.InsertStepState(pb.InsertStepStateRequest(run_id=step.run_id, step_name="inline")).step
    assert _claim(stub, inline, rpc_name="").claimed, "empty matches a step without a function"
    other = stub.InsertStepState(pb.InsertStepStateRequest(run_id=step.run_id, step_name="other-inline")).step
    assert _claim(stub, other, rpc_name="anything").claimed, "a step without a function has none to mismatch"
    code, reason, _, details = reason_of(stub.ClaimStep, pb.ClaimStepRequest(run_id=step.run_id, step_name=step.step_name, rpc_name=""))
    assert (code, reason, details["prior_rpc_name"]) == (PRECONDITION, "WRONG_RPC", "doWork"), "an empty rpc_name does not claim one"


def test_claim_step_of_a_finished_run(stub) -> None:
    run = new_run(stub)
    pending = new_step(stub, run.run_id, "pending")
    done = new_step(stub, run.run_id, "done")
    move_step(stub, done.step_id, SUCCEEDED)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_CANCELLED))
    code, reason, _, details = reason_of(stub.ClaimStep, pb.ClaimStepRequest(run_id=run.run_id, step_name="pending", rpc_name="doWork"))
    assert (code, reason, details["run_status"]) == (PRECONDITION, "FINISHED_RUN", "CANCELLED"), details
    assert _read(stub, pending).status == PENDING
    assert not _claim(stub, done).claimed, "a duplicate after the end is answered, not refused"


def test_claim_step_bad_input(stub) -> None:
    run = new_run(stub)
    for request, code, reason, field in [
        (pb.ClaimStepRequest(run_id="x", step_name="s"), INVALID, "INVALID_ARGUMENT", "run_id"),
        (pb.ClaimStepRequest(run_id=run.run_id, step_name=""), INVALID, "INVALID_ARGUMENT", "step_name"),
        (pb.ClaimStepRequest(run_id=run.run_id, step_name="s" * 257), INVALID, "INVALID_ARGUMENT", "step_name"),
        (pb.ClaimStepRequest(run_id=run.run_id, step_name="s", rpc_name="r" * 257), INVALID, "INVALID_ARGUMENT", "rpc_name"),
        (pb.ClaimStepRequest(run_id=run.run_id, step_name="nope"), NOT_FOUND, "MISSING", "nope"),
        (pb.ClaimStepRequest(run_id=MISSING, step_name="nope"), NOT_FOUND, "MISSING", MISSING),
    ]:
        refused = refusal_of(stub.ClaimStep, request)
        assert (refused.code, refused.reason) == (code, reason) and field in refused.message, (request, refused)


@pytest.mark.parametrize("path", [[], [RUNNING, FAILED]], ids=["pending", "failed"])
def test_of_many_concurrent_claimers_exactly_one_claims(stub, path: list[int]) -> None:
    step = _step_in(stub, path)
    results = _race(8, lambda i: _claim(stub, step))
    assert not [r for r in results if isinstance(r, grpc.RpcError)], results
    assert sum(r.claimed for r in results) == 1
    assert {r.step.attempt_count for r in results} == {len(path) // 2 + 1}
    assert len(history_of(stub, step.run_id, step.step_name)) == len(path) // 2 + 1


# Child run and branch.


def test_set_step_child_run(stub) -> None:
    step = _step_in(stub, [RUNNING])
    child, other = new_run(stub), new_run(stub)
    linked = stub.SetStepChildRun(pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=child.run_id)).step
    assert linked.child_run_id == child.run_id and linked.status == RUNNING
    again = stub.SetStepChildRun(pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=child.run_id)).step
    assert again == linked, "the same child again is a no-op"
    code, reason, _, details = reason_of(stub.SetStepChildRun, pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=other.run_id))
    assert (code, reason, details["prior_link"], details["child_run_id"]) == (PRECONDITION, "DIFFERENT_PAYLOAD", child.run_id, other.run_id)
    assert _read(stub, step) == linked
    # The next attempt starts without it.
    move_step(stub, step.step_id, FAILED)
    retry = stub.CreateRetryAttempt(pb.CreateRetryAttemptRequest(step_id=step.step_id, status=RUNNING)).step
    assert retry.child_run_id == ""
    assert stub.SetStepChildRun(pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=other.run_id)).step.child_run_id == other.run_id


def test_set_step_child_run_refusals(stub) -> None:
    step = _step_in(stub, [RUNNING])
    for request, code, reason, field in [
        (pb.SetStepChildRunRequest(step_id=step.step_id), INVALID, "INVALID_ARGUMENT", "child_run_id"),
        (pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id="nope"), INVALID, "INVALID_ARGUMENT", "child_run_id"),
        (pb.SetStepChildRunRequest(step_id="nope", child_run_id=step.run_id), INVALID, "INVALID_ARGUMENT", "step_id"),
        (pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=MISSING), NOT_FOUND, "MISSING_CHILD", f"child_run_id: run {MISSING}"),
        (pb.SetStepChildRunRequest(step_id=MISSING, child_run_id=step.run_id), NOT_FOUND, "MISSING", f"step {MISSING}"),
    ]:
        refused = refusal_of(stub.SetStepChildRun, request)
        assert (refused.code, refused.reason) == (code, reason) and field in refused.message, (request, refused)
    assert _read(stub, step) == step


def test_set_step_branch(stub) -> None:
    step = _step_in(stub, [RUNNING, SUCCEEDED])  # a graph node records its branch after it ran
    branched = stub.SetStepBranch(pb.SetStepBranchRequest(step_id=step.step_id, branch_key="yes")).step
    assert branched.branch_key == "yes" and branched.status == SUCCEEDED
    assert stub.SetStepBranch(pb.SetStepBranchRequest(step_id=step.step_id, branch_key="yes")).step == branched
    code, reason, _, details = reason_of(stub.SetStepBranch, pb.SetStepBranchRequest(step_id=step.step_id, branch_key="no"))
    assert (code, reason, details["prior_link"]) == (PRECONDITION, "DIFFERENT_PAYLOAD", "yes"), details
    for request, code, reason, field in [
        (pb.SetStepBranchRequest(step_id=step.step_id), INVALID, "INVALID_ARGUMENT", "branch_key"),
        (pb.SetStepBranchRequest(step_id=step.step_id, branch_key="b" * 257), INVALID, "INVALID_ARGUMENT", "branch_key"),
        (pb.SetStepBranchRequest(step_id=MISSING, branch_key="b"), NOT_FOUND, "MISSING", MISSING),
    ]:
        refused = refusal_of(stub.SetStepBranch, request)
        assert (refused.code, refused.reason) == (code, reason) and field in refused.message, (request, refused)
    assert _read(stub, step) == branched


def test_a_claimed_retry_clears_the_branch_and_child(stub) -> None:
    step = _step_in(stub, [RUNNING])
    stub.SetStepBranch(pb.SetStepBranchRequest(step_id=step.step_id, branch_key="left"))
    stub.SetStepChildRun(pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=new_run(stub).run_id))
    move_step(stub, step.step_id, FAILED)
    claimed = _claim(stub, step).step
    assert (claimed.attempt_count, claimed.branch_key, claimed.child_run_id) == (2, "", "")


def test_links_refused_on_a_finished_run(stub) -> None:
    run = new_run(stub)
    step = new_step(stub, run.run_id)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED))
    for call, request in [
        (stub.SetStepBranch, pb.SetStepBranchRequest(step_id=step.step_id, branch_key="b")),
        (stub.SetStepChildRun, pb.SetStepChildRunRequest(step_id=step.step_id, child_run_id=new_run(stub).run_id)),
    ]:
        code, reason, _, details = reason_of(call, request)
        assert (code, reason, details["run_status"]) == (PRECONDITION, "FINISHED_RUN", "COMPLETED"), details
    assert _read(stub, step) == step


# Run state variables.


def _state(stub, run_id: str) -> dict:
    return json.loads(stub.GetRunState(pb.GetRunStateRequest(run_id=run_id)).state_json)


def test_run_state_variables(stub) -> None:
    run = new_run(stub)
    assert _state(stub, run.run_id) == {}
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="a.b", value_json='{"x": 1}'))
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name='q"uote', value_json='"v"'))
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="empty"))
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="a.b", value_json="[2]"))
    assert _state(stub, run.run_id) == {"a.b": [2], 'q"uote': "v", "empty": None}, "names are literal keys, never paths"


def test_run_state_refusals(stub) -> None:
    run = new_run(stub)
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="kept", value_json="1"))
    for request, code, field in [
        (pb.UpdateRunStateRequest(run_id="x", name="n"), INVALID, "run_id"),
        (pb.UpdateRunStateRequest(run_id=run.run_id, name=""), INVALID, "name"),
        (pb.UpdateRunStateRequest(run_id=run.run_id, name="n" * 257), INVALID, "name"),
        (pb.UpdateRunStateRequest(run_id=run.run_id, name="n", value_json="{"), INVALID, "value_json"),
        (pb.UpdateRunStateRequest(run_id=run.run_id, name="n", value_json='"' + "x" * LIMIT + '"'), INVALID, "value_json"),
        (pb.UpdateRunStateRequest(run_id=MISSING, name="n"), NOT_FOUND, MISSING),
    ]:
        refused = refusal_of(stub.UpdateRunState, request)
        assert (refused.code, refused.reason) == (code, "MISSING" if code == NOT_FOUND else "INVALID_ARGUMENT"), refused
        assert field in refused.message, (request, refused)
    assert reason_of(stub.GetRunState, pb.GetRunStateRequest(run_id=MISSING))[:2] == (NOT_FOUND, "MISSING")
    assert status_of(stub.GetRunState, pb.GetRunStateRequest(run_id=""))[0] == INVALID
    assert _state(stub, run.run_id) == {"kept": 1}


def test_run_state_past_the_payload_limit_is_resource_exhausted(stub) -> None:
    run = new_run(stub)
    half = '"' + "x" * (LIMIT // 2) + '"'
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="first", value_json=half))
    before = stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run
    refused = refusal_of(stub.UpdateRunState, pb.UpdateRunStateRequest(run_id=run.run_id, name="second", value_json=half))
    assert (refused.code, refused.reason, refused.metadata["max_bytes"]) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE", str(LIMIT))
    assert str(LIMIT) in refused.message and "nothing was written" in refused.message, refused
    assert set(_state(stub, run.run_id)) == {"first"}
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run == before
    # Replacing the big variable keeps the state small: allowed.
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="first", value_json="1"))
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name="second", value_json=half))


def test_run_state_of_a_finished_run_is_refused(stub) -> None:
    run = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED))
    code, reason, _, details = reason_of(stub.UpdateRunState, pb.UpdateRunStateRequest(run_id=run.run_id, name="n", value_json="1"))
    assert (code, reason, details["run_status"]) == (PRECONDITION, "FINISHED_RUN", "FAILED"), details
    assert _state(stub, run.run_id) == {}


def test_concurrent_writers_of_different_names_are_all_kept(stub) -> None:
    run = new_run(stub)
    results = _race(12, lambda i: stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=run.run_id, name=f"v{i}", value_json=str(i))))
    assert not [r for r in results if isinstance(r, grpc.RpcError)], results
    assert _state(stub, run.run_id) == {f"v{i}": i for i in range(12)}


# Each attempt's times.


def test_history_keeps_each_attempt_s_times(stub) -> None:
    step = _step_in(stub, [SCHEDULED, RUNNING, FAILED])
    stub.CreateRetryAttempt(pb.CreateRetryAttemptRequest(step_id=step.step_id, status=RUNNING))
    done = move_step(stub, step.step_id, SUCCEEDED)
    first, second = history_of(stub, step.run_id, step.step_name)
    assert all(first.HasField(f) for f in ("scheduled_time", "running_time", "failed_time")) and not first.HasField("succeeded_time")
    assert second.HasField("running_time") and second.HasField("succeeded_time")
    assert not second.HasField("scheduled_time") and not second.HasField("failed_time")
    assert (second.running_time, second.succeeded_time) == (done.running_time, done.succeeded_time)


def test_history_keeps_the_times_of_dispatched_attempts(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [step] = scheduled_steps(stub, rpc, 1, retries=1)
    worker.fail(worker.expect("task"), "first try fails")
    assert worker.expect("accepted").status == SCHEDULED
    worker.complete(worker.expect("task"))
    assert worker.expect("accepted").status == SUCCEEDED
    first, second = history_of(stub, step.run_id, step.step_name)
    assert all(first.HasField(f) for f in ("scheduled_time", "running_time", "failed_time"))
    assert all(second.HasField(f) for f in ("scheduled_time", "running_time", "succeeded_time")) and not second.HasField("failed_time")
    assert first.failed_time.ToDatetime() <= second.scheduled_time.ToDatetime() <= second.running_time.ToDatetime()
    worker.cancel()


# Stalled runs and undispatched steps: on a server of their own, whose schema holds only this test's rows.


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture
def own_stub(start_server):
    with grpc.insecure_channel(start_server().target) as channel:
        yield pb_grpc.WorkflowStateServiceStub(channel)


def test_list_stalled_runs(own_stub) -> None:
    stub = own_stub
    empty = new_run(stub)  # no steps at all
    with_pending = new_run(stub)
    new_step(stub, with_pending.run_id)
    moving = {}
    for status in (RUNNING, SCHEDULED, SUSPENDED):
        run = new_run(stub)
        moving[status] = run
        step = new_step(stub, run.run_id)
        if status == SUSPENDED:
            stub.SetStepSuspended(pb.SetStepSuspendedRequest(step_id=step.step_id))
        else:
            move_step(stub, step.step_id, status)
    finished = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=finished.run_id, status=pb.RUN_STATUS_COMPLETED))
    suspended = new_run(stub)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=suspended.run_id, status=pb.RUN_STATUS_SUSPENDED))
    step_changed_later = new_run(stub)
    late_step = new_step(stub, step_changed_later.run_id)
    state_changed_later = new_run(stub)
    cutoff = datetime.now(timezone.utc)
    move_step(stub, late_step.step_id, SUCCEEDED)  # a change after the cutoff: not stalled
    stub.UpdateRunState(pb.UpdateRunStateRequest(run_id=state_changed_later.run_id, name="n", value_json="1"))
    new_run(stub)  # created after the cutoff

    listed = stub.ListStalledRuns(pb.ListStalledRunsRequest(updated_before=_timestamp(cutoff), max_runs=1000)).run_ids
    assert list(listed) == [empty.run_id, with_pending.run_id], "oldest last change first"
    one = stub.ListStalledRuns(pb.ListStalledRunsRequest(updated_before=_timestamp(cutoff), max_runs=1)).run_ids
    assert list(one) == [empty.run_id]
    early = stub.ListStalledRuns(pb.ListStalledRunsRequest(updated_before=_timestamp(cutoff - timedelta(days=1)), max_runs=10)).run_ids
    assert list(early) == []


def test_list_undispatched_steps(own_stub) -> None:
    stub = own_stub
    run = new_run(stub)
    first = new_step(stub, run.run_id, "first")
    second = new_step(stub, run.run_id, "second")
    move_step(stub, new_step(stub, run.run_id, "scheduled").step_id, SCHEDULED)
    suspended_run = new_run(stub)
    new_step(stub, suspended_run.run_id, "of-suspended-run")
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=suspended_run.run_id, status=pb.RUN_STATUS_SUSPENDED))
    touched = new_step(stub, run.run_id, "touched")
    cutoff = datetime.now(timezone.utc)
    new_step(stub, run.run_id, "late")
    stub.SetStepBranch(pb.SetStepBranchRequest(step_id=touched.step_id, branch_key="b"))  # changed after the cutoff

    steps = stub.ListUndispatchedSteps(pb.ListUndispatchedStepsRequest(updated_before=_timestamp(cutoff), max_steps=1000)).steps
    assert [(s.run_id, s.step_id) for s in steps] == [(run.run_id, first.step_id), (run.run_id, second.step_id)]
    one = stub.ListUndispatchedSteps(pb.ListUndispatchedStepsRequest(updated_before=_timestamp(cutoff), max_steps=1)).steps
    assert [s.step_id for s in one] == [first.step_id]


@pytest.mark.parametrize("rpc_name", ["ListStalledRuns", "ListUndispatchedSteps"])
def test_engine_lists_bad_input(stub, rpc_name: str) -> None:
    request_class = getattr(pb, f"{rpc_name}Request")
    limit = "max_runs" if rpc_name == "ListStalledRuns" else "max_steps"
    now = _timestamp(datetime.now(timezone.utc))
    for fields, field in [
        ({limit: 10}, "updated_before"),
        ({"updated_before": now}, limit),
        ({"updated_before": now, limit: 1001}, limit),
        ({"updated_before": now, limit: -1}, limit),
        ({"updated_before": Timestamp(seconds=2**40), limit: 1}, "updated_before"),
    ]:
        refused = refusal_of(getattr(stub, rpc_name), request_class(**fields))
        assert (refused.code, refused.metadata.get("field")) == (INVALID, field) and field in refused.message, (fields, refused)
