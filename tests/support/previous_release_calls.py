"""A client built from the previous release's stubs: every unary RPC of that release against a server.

    PYTHONPATH=STUBS_ROOT:TESTS_DIR python previous_release_calls.py TARGET

STUBS_ROOT holds workflowstate/v1/workflow_state_pb2.py and workflow_state_pb2_grpc.py as
generated in that release (tests/contract/previous), and nothing else of the package: the old
and the new stubs both define workflowstate/v1/workflow_state.proto and the same message
names, so they cannot share one process. This process walks a real lifecycle (a run, its
steps and their attempts, engine state, leases, workers, schedules, dispatch defaults,
retention, lists, cancels and deletes), checks each decoded reply field by field (an
AssertionError fails it), and prints one JSON object on stdout:

    {"stubs": "<path of the stubs used>", "unary_methods": [...], "outcomes": {"GetRun": [["OK", ""], ["NOT_FOUND", "<reason>"]], ...}}

unary_methods are the old service descriptor's unary methods; outcomes hold each call made:
its status code's name and, for a refusal, its ErrorInfo reason; so the test can check that every method was
called and that none was answered UNIMPLEMENTED or INTERNAL.
"""

from __future__ import annotations

import json
import queue
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from support.error_info import error_info_of
from workflowstate.v1 import workflow_state_pb2 as pb, workflow_state_pb2_grpc as pb_grpc  # the old single file, not the package

CALL_TIMEOUT = 20.0
SERVICE = pb.DESCRIPTOR.services_by_name["WorkflowStateService"]


class RecordingStub:
    """The old stub, recording the outcome of every unary call made through it."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceStub) -> None:
        self._stub = stub
        self.outcomes: dict[str, list[tuple[str, str]]] = {}

    def call(self, method: str, request: Any) -> Any:
        """Make the call and return its reply; a refusal is recorded and raised."""
        try:
            reply = getattr(self._stub, method)(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            reason, _, _ = error_info_of(err)
            self.outcomes.setdefault(method, []).append((err.code().name, reason))
            raise
        self.outcomes.setdefault(method, []).append(("OK", ""))
        return reply

    def refusal(self, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
        """Make a call that must be refused; return its code and ErrorInfo reason."""
        try:
            self.call(method, request)
        except grpc.RpcError as err:
            return err.code(), error_info_of(err)[0]
        raise AssertionError(f"{method} succeeded; a refusal was expected")


class OpenStream:
    """A bidi stream of the old stub: send requests, read replies one at a time."""

    def __init__(self, method: Any) -> None:
        self._outgoing: queue.Queue[Any] = queue.Queue()
        self._call = method(iter(self._outgoing.get, None), timeout=CALL_TIMEOUT * 3)
        self._replies: Iterator[Any] = iter(self._call)

    def send(self, request: Any) -> None:
        self._outgoing.put(request)

    def receive(self) -> Any:
        return next(self._replies)

    def close(self) -> None:
        self._outgoing.put(None)
        self._call.cancel()


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def run_lifecycle(stub: RecordingStub, streams: pb_grpc.WorkflowStateServiceStub) -> None:
    suffix = uuid.uuid4().hex[:8]
    workflow, rpc = f"compat-{suffix}", f"compat-fn-{suffix}"

    # A run: created (idempotently by request_id) and read back.
    created = stub.call(
        "CreateRun", pb.CreateRunRequest(workflow=workflow, input_json='{"n": 1}', request_id=f"req-{suffix}", metadata_json='{"team": "a"}')
    ).run
    assert (created.workflow, created.status) == (workflow, pb.RUN_STATUS_RUNNING)
    assert json.loads(created.input_json) == {"n": 1} and json.loads(created.metadata_json) == {"team": "a"}
    assert created.run_id and created.HasField("create_time")
    again = stub.call("CreateRun", pb.CreateRunRequest(workflow=workflow, input_json='{"n": 1}', request_id=f"req-{suffix}")).run
    assert again.run_id == created.run_id, "the same request_id returns the same run"
    run = stub.call("GetRun", pb.GetRunRequest(run_id=created.run_id)).run
    assert (run.run_id, run.workflow, run.status, json.loads(run.input_json)) == (created.run_id, workflow, pb.RUN_STATUS_RUNNING, {"n": 1})

    # A step: inserted, scheduled, running, failed, retried, running again, succeeded.
    fetch = stub.call(
        "InsertStepState",
        pb.InsertStepStateRequest(
            run_id=run.run_id, step_name="fetch", rpc_name=rpc, data_json='{"url": "u"}', options=pb.StepOptions(retries=2)
        ),
    ).step
    assert (fetch.run_id, fetch.step_name, fetch.rpc_name, fetch.status, fetch.attempt_count) == (
        run.run_id, "fetch", rpc, pb.STEP_STATUS_PENDING, 1
    )
    assert json.loads(fetch.data_json) == {"url": "u"} and fetch.retries == 2
    read = stub.call("GetStepState", pb.GetStepStateRequest(run_id=run.run_id, step_name="fetch")).step
    assert (read.step_id, read.status) == (fetch.step_id, pb.STEP_STATUS_PENDING)
    scheduled = stub.call("SetStepScheduled", pb.SetStepScheduledRequest(step_id=fetch.step_id)).step
    assert scheduled.status == pb.STEP_STATUS_SCHEDULED and scheduled.HasField("scheduled_time")
    running = stub.call("SetStepRunning", pb.SetStepRunningRequest(step_id=fetch.step_id)).step
    assert running.status == pb.STEP_STATUS_RUNNING and running.HasField("running_time")
    failed = stub.call("SetStepError", pb.SetStepErrorRequest(step_id=fetch.step_id, error=pb.Failure(message="boom", code="E_IO"))).step
    assert (failed.status, failed.error.message, failed.error.code) == (pb.STEP_STATUS_FAILED, "boom", "E_IO")
    retried = stub.call("CreateRetryAttempt", pb.CreateRetryAttemptRequest(step_id=fetch.step_id, status=pb.STEP_STATUS_PENDING)).step
    assert (retried.step_id, retried.status, retried.attempt_count, retried.error.message) == (fetch.step_id, pb.STEP_STATUS_PENDING, 2, "")
    assert stub.call("SetStepRunning", pb.SetStepRunningRequest(step_id=fetch.step_id)).step.status == pb.STEP_STATUS_RUNNING
    succeeded = stub.call("SetStepResult", pb.SetStepResultRequest(step_id=fetch.step_id, result_json='{"ok": true}')).step
    assert (succeeded.status, json.loads(succeeded.result_json), succeeded.attempt_count) == (pb.STEP_STATUS_SUCCEEDED, {"ok": True}, 2)
    history = stub.call("GetRunHistory", pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
    assert [(a.step_id, a.step_name, a.attempt, a.status) for a in history] == [
        (fetch.step_id, "fetch", 1, pb.STEP_STATUS_FAILED),
        (fetch.step_id, "fetch", 2, pb.STEP_STATUS_SUCCEEDED),
    ]
    assert history[0].error.message == "boom" and json.loads(history[1].result_json) == {"ok": True}

    # Engine state: a suspended step with a branch and a child run, a claimed step, state variables, versions.
    approve = stub.call("InsertStepState", pb.InsertStepStateRequest(run_id=run.run_id, step_name="approve", rpc_name=rpc)).step
    suspended = stub.call("SetStepSuspended", pb.SetStepSuspendedRequest(step_id=approve.step_id)).step
    assert (suspended.step_id, suspended.status) == (approve.step_id, pb.STEP_STATUS_SUSPENDED)
    branched = stub.call("SetStepBranch", pb.SetStepBranchRequest(step_id=approve.step_id, branch_key="yes")).step
    assert (branched.branch_key, branched.status) == ("yes", pb.STEP_STATUS_SUSPENDED)
    child = stub.call("CreateRun", pb.CreateRunRequest(workflow=workflow, input_json="{}")).run
    with_child = stub.call("SetStepChildRun", pb.SetStepChildRunRequest(step_id=approve.step_id, child_run_id=child.run_id)).step
    assert (with_child.child_run_id, with_child.branch_key) == (child.run_id, "yes")
    approved = stub.call("SetStepResult", pb.SetStepResultRequest(step_id=approve.step_id, result_json='"approved"')).step
    assert (approved.status, json.loads(approved.result_json)) == (pb.STEP_STATUS_SUCCEEDED, "approved")
    stub.call("InsertStepState", pb.InsertStepStateRequest(run_id=run.run_id, step_name="claim-me", rpc_name=rpc))
    claim = stub.call("ClaimStep", pb.ClaimStepRequest(run_id=run.run_id, step_name="claim-me", rpc_name=rpc))
    assert (claim.claimed, claim.step.step_name, claim.step.status) == (True, "claim-me", pb.STEP_STATUS_RUNNING)
    stub.call("SetStepResult", pb.SetStepResultRequest(step_id=claim.step.step_id, result_json="1"))
    stub.call("UpdateRunState", pb.UpdateRunStateRequest(run_id=run.run_id, name="cursor", value_json="3"))
    state = stub.call("GetRunState", pb.GetRunStateRequest(run_id=run.run_id))
    assert json.loads(state.state_json) == {"cursor": 3}
    upserted = stub.call(
        "UpsertWorkflowVersion",
        pb.UpsertWorkflowVersionRequest(
            workflow=workflow, graph_hash="h1", graph_json='{"nodes": []}', source="compat", status=pb.WORKFLOW_VERSION_STATUS_DRAFT
        ),
    )
    assert upserted.created and (upserted.version.workflow, upserted.version.graph_hash, upserted.version.status) == (
        workflow, "h1", pb.WORKFLOW_VERSION_STATUS_DRAFT
    )
    version = stub.call("GetWorkflowVersion", pb.GetWorkflowVersionRequest(workflow=workflow, graph_hash="h1")).version
    assert (json.loads(version.graph_json), version.source, version.status) == ({"nodes": []}, "compat", pb.WORKFLOW_VERSION_STATUS_DRAFT)
    activated = stub.call(
        "UpdateWorkflowVersionStatus",
        pb.UpdateWorkflowVersionStatusRequest(workflow=workflow, graph_hash="h1", status=pb.WORKFLOW_VERSION_STATUS_ACTIVE),
    ).version
    assert activated.status == pb.WORKFLOW_VERSION_STATUS_ACTIVE

    # What an engine recovers: the child run nothing moves, and a step nobody dispatched.
    waiting = stub.call("InsertStepState", pb.InsertStepStateRequest(run_id=run.run_id, step_name="waiting", rpc_name=rpc)).step
    cutoff = timestamp(datetime.now(timezone.utc))
    stalled = stub.call("ListStalledRuns", pb.ListStalledRunsRequest(updated_before=cutoff, max_runs=100)).run_ids
    # A PENDING step moves nothing: both runs are stalled, the child (older last change) first.
    assert list(stalled) == [child.run_id, run.run_id], (list(stalled), child.run_id, run.run_id)
    undispatched = stub.call("ListUndispatchedSteps", pb.ListUndispatchedStepsRequest(updated_before=cutoff, max_steps=100)).steps
    assert [(s.run_id, s.step_id) for s in undispatched] == [(run.run_id, waiting.step_id)]

    # A lease, held over the old stub's Lease stream, seen by GetLease and ListLeases.
    key = f"compat/{suffix}"
    lease = OpenStream(streams.Lease)
    lease.send(pb.LeaseRequest(acquire=pb.LeaseAcquire(key=key, ttl=Duration(seconds=30), holder="compat-holder")))
    granted = lease.receive().granted
    assert granted.key == key and granted.fencing_token > 0
    held = stub.call("GetLease", pb.GetLeaseRequest(key=key)).lease
    assert (held.key, held.holder, held.fencing_token, held.expire_time) == (key, "compat-holder", granted.fencing_token, granted.expire_time)
    listed = stub.call("ListLeases", pb.ListLeasesRequest(key_prefix="compat/", page_size=10))
    assert [(info.key, info.fencing_token) for info in listed.leases] == [(key, granted.fencing_token)] and not listed.next_page_token
    lease.send(pb.LeaseRequest(release=pb.LeaseRelease()))
    assert lease.receive().WhichOneof("kind") == "released"
    lease.close()

    # Batch: each operation its own outcome, a refusal with its reason among them.
    results = stub.call(
        "Batch",
        pb.BatchRequest(
            operations=[
                pb.BatchOperation(get_run=pb.GetRunRequest(run_id=run.run_id)),
                pb.BatchOperation(get_step_state=pb.GetStepStateRequest(run_id=run.run_id, step_name="fetch")),
                pb.BatchOperation(get_lease=pb.GetLeaseRequest(key=key)),
            ]
        ),
    ).results
    assert [result.WhichOneof("result") for result in results] == ["get_run", "get_step_state", "error"]
    assert results[0].get_run.run.run_id == run.run_id and results[1].get_step_state.step.status == pb.STEP_STATUS_SUCCEEDED
    assert results[2].error.code == grpc.StatusCode.NOT_FOUND.value[0] and results[2].error.reason, "the released key is nobody's"

    # A worker connected over the old stub's StreamStepTasks, as ListWorkers shows it. It serves
    # an rpc name of its own, so no step of this run is handed to it.
    worker_id = f"compat-worker-{suffix}"
    worker = OpenStream(streams.StreamStepTasks)
    worker.send(
        pb.StreamStepTasksRequest(
            subscribe=pb.StepTaskSubscribe(
                worker_id=worker_id, rpc_names=[f"compat-idle-{suffix}"], max_in_flight=2, task_lease=Duration(seconds=30)
            )
        )
    )
    assert worker.receive().subscribed.task_lease == Duration(seconds=30)
    workers = stub.call("ListWorkers", pb.ListWorkersRequest()).workers
    assert [(w.worker_id, list(w.rpc_names), w.max_in_flight, w.tasks_in_flight) for w in workers] == [
        (worker_id, [f"compat-idle-{suffix}"], 2, 0)
    ]
    worker.close()

    # Schedules: created, listed, paused, resumed, deleted. Its cron fires once a year, on 1 January.
    schedule_id = f"compat-{suffix}"
    schedule = stub.call(
        "CreateSchedule",
        pb.CreateScheduleRequest(
            schedule_id=schedule_id, workflow=workflow, cron="0 0 1 1 *", timezone="UTC", input_json='{"from": "schedule"}',
            overlap=pb.SCHEDULE_OVERLAP_SKIP, catch_up=pb.SCHEDULE_CATCH_UP_SKIP,
        ),
    ).schedule
    assert (schedule.schedule_id, schedule.workflow, schedule.cron, schedule.timezone, schedule.paused) == (
        schedule_id, workflow, "0 0 1 1 *", "UTC", False
    )
    assert (schedule.overlap, schedule.catch_up, json.loads(schedule.input_json)) == (
        pb.SCHEDULE_OVERLAP_SKIP, pb.SCHEDULE_CATCH_UP_SKIP, {"from": "schedule"}
    )
    next_fire = schedule.next_fire_time.ToDatetime(tzinfo=timezone.utc)
    assert (next_fire.month, next_fire.day, next_fire.hour, next_fire.minute) == (1, 1, 0, 0)
    assert [s.schedule_id for s in stub.call("ListSchedules", pb.ListSchedulesRequest(page_size=10)).schedules] == [schedule_id]
    paused = stub.call("PauseSchedule", pb.PauseScheduleRequest(schedule_id=schedule_id)).schedule
    assert paused.paused and not paused.HasField("next_fire_time")
    resumed = stub.call("ResumeSchedule", pb.ResumeScheduleRequest(schedule_id=schedule_id)).schedule
    assert not resumed.paused and resumed.next_fire_time == schedule.next_fire_time
    stub.call("DeleteSchedule", pb.DeleteScheduleRequest(schedule_id=schedule_id))
    assert list(stub.call("ListSchedules", pb.ListSchedulesRequest(page_size=10)).schedules) == []

    # Dispatch defaults of an rpc name: set, listed, deleted.
    defaults_rpc = f"compat-defaults-{suffix}"
    defaults = stub.call(
        "SetDispatchDefaults",
        pb.SetDispatchDefaultsRequest(
            defaults=pb.DispatchDefaults(rpc_name=defaults_rpc, options=pb.StepOptions(retries=4, priority=2), concurrency_limit=3)
        ),
    ).defaults
    assert (defaults.rpc_name, defaults.options.retries, defaults.options.priority, defaults.concurrency_limit) == (defaults_rpc, 4, 2, 3)
    assert not defaults.HasField("rate_limit") and defaults.HasField("update_time")
    listed_defaults = stub.call("ListDispatchDefaults", pb.ListDispatchDefaultsRequest()).defaults
    assert [(d.rpc_name, d.concurrency_limit) for d in listed_defaults] == [(defaults_rpc, 3)]
    stub.call("DeleteDispatchDefaults", pb.DeleteDispatchDefaultsRequest(rpc_name=defaults_rpc))

    # Retention: a policy set, listed, deleted (it never comes due here: 30 days).
    policy = stub.call(
        "SetRetentionPolicy",
        pb.SetRetentionPolicyRequest(workflow=workflow, statuses=[pb.RUN_STATUS_COMPLETED], keep=Duration(seconds=30 * 86400)),
    ).policy
    assert policy.policy_id > 0 and (policy.workflow, list(policy.statuses), policy.keep) == (
        workflow, [pb.RUN_STATUS_COMPLETED], Duration(seconds=30 * 86400)
    )
    policies = stub.call("ListRetentionPolicies", pb.ListRetentionPoliciesRequest()).policies
    assert [(p.policy_id, p.workflow) for p in policies] == [(policy.policy_id, workflow)]
    stub.call("DeleteRetentionPolicy", pb.DeleteRetentionPolicyRequest(policy_id=policy.policy_id))

    # The run finishes; the operators' lists see it and its child.
    stub.call("SetStepResult", pb.SetStepResultRequest(step_id=waiting.step_id, result_json="null"))
    finished = stub.call(
        "UpdateRunStatus", pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json='{"done": true}')
    ).run
    assert (finished.status, json.loads(finished.output_json)) == (pb.RUN_STATUS_COMPLETED, {"done": True})
    runs = stub.call(
        "ListRuns",
        pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), order_by=pb.RUN_ORDER_CREATE_TIME_ASC, page_size=10, view=pb.RUN_VIEW_FULL),
    )
    assert [(r.run_id, r.status) for r in runs.runs] == [(run.run_id, pb.RUN_STATUS_COMPLETED), (child.run_id, pb.RUN_STATUS_RUNNING)]
    assert json.loads(runs.runs[0].output_json) == {"done": True} and not runs.next_page_token
    steps = stub.call("ListSteps", pb.ListStepsRequest(run_id=run.run_id)).steps
    assert [(s.step_name, s.status) for s in steps] == [(name, pb.STEP_STATUS_SUCCEEDED) for name in ("fetch", "approve", "claim-me", "waiting")]
    summaries = stub.call("ListWorkflows", pb.ListWorkflowsRequest()).workflows
    counted = [(w.workflow, sorted((c.status, c.run_count) for c in w.run_counts)) for w in summaries]
    every_status = [(pb.RUN_STATUS_RUNNING, 1), (pb.RUN_STATUS_COMPLETED, 1), (pb.RUN_STATUS_FAILED, 0), (pb.RUN_STATUS_CANCELLED, 0),
                    (pb.RUN_STATUS_SUSPENDED, 0)]
    assert counted == [(workflow, every_status)], counted

    # Cancels and deletes: one run, then by filter; a refusal names its reason.
    cancelled = stub.call("CancelRun", pb.CancelRunRequest(run_id=child.run_id, reason="not needed")).run
    assert (cancelled.status, cancelled.error.code, cancelled.error.message) == (pb.RUN_STATUS_CANCELLED, "CANCELLED", "not needed")
    others = f"compat-others-{suffix}"
    other_ids = {stub.call("CreateRun", pb.CreateRunRequest(workflow=others)).run.run_id for _ in range(2)}
    bulk = stub.call("CancelRuns", pb.CancelRunsRequest(filter=pb.RunFilter(workflow=others), max_runs=10, reason="bulk"))
    assert (bulk.cancelled_count, set(bulk.run_ids)) == (2, other_ids)
    live = stub.call("CreateRun", pb.CreateRunRequest(workflow=others)).run
    code, reason = stub.refusal("DeleteRun", pb.DeleteRunRequest(run_id=live.run_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason, (code, reason)
    stub.call("DeleteRun", pb.DeleteRunRequest(run_id=live.run_id, force=True))
    code, reason = stub.refusal("GetRun", pb.GetRunRequest(run_id=live.run_id))
    assert code == grpc.StatusCode.NOT_FOUND and reason, (code, reason)
    deleted = stub.call("DeleteRuns", pb.DeleteRunsRequest(filter=pb.RunFilter(workflow=others), max_runs=10))
    assert (deleted.deleted_count, set(deleted.run_ids)) == (2, other_ids)


def unary_methods() -> list[str]:
    return sorted(m.name for m in SERVICE.methods if not (m.client_streaming or m.server_streaming))


def main(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        streams = pb_grpc.WorkflowStateServiceStub(channel)
        stub = RecordingStub(streams)
        run_lifecycle(stub, streams)
    print(json.dumps({"stubs": pb.__file__, "unary_methods": unary_methods(), "outcomes": stub.outcomes}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
