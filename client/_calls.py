"""Every RPC of the client, described once for the sync and the async client.

Each function here builds the request of one RPC from the caller's Python
arguments and says how to read its reply, as a :class:`Call`. The two clients
only send it, the sync one blocking, the async one awaiting; everything else
(validation, encoding, decoding, error mapping) lives here, so it cannot drift
between them. The Lease stream is the one RPC that is not a Call: its shared
logic is ``_lease_protocol``.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Generic, Protocol, TypeVar

import grpc
from google.protobuf.message import Message

from workflowstate import v1 as pb

from ._convert import (
    claimed_step_from_proto,
    decode_json_entries,
    dispatch_defaults_from_proto,
    duration_to_proto,
    encode_json,
    failure_to_proto,
    lease_info_from_proto,
    lease_page_from_proto,
    planned_step_to_proto,
    retention_policy_from_proto,
    SCHEDULE_CATCH_UP_TO_PROTO,
    SCHEDULE_OVERLAP_TO_PROTO,
    schedule_from_proto,
    schedule_page_from_proto,
    run_from_proto,
    run_page_from_proto,
    run_status_to_proto,
    step_attempt_from_proto,
    step_ref_from_proto,
    step_state_from_proto,
    step_options_to_proto,
    step_status_to_proto,
    timestamp_to_proto,
    upserted_version_from_proto,
    version_status_to_proto,
    worker_info_from_proto,
    workflow_summary_from_proto,
    workflow_version_from_proto,
)
from ._errors import NotFound, error_from_rpc
from ._types import (
    ClaimedStep,
    DispatchDefaults,
    Failure,
    LeaseInfo,
    LeasePage,
    PlannedStep,
    RetentionPolicy,
    Run,
    RunPage,
    RunStatus,
    Schedule,
    ScheduleCatchUp,
    ScheduleOverlap,
    SchedulePage,
    StepAttempt,
    StepRef,
    StepOptions,
    StepState,
    StepStatus,
    UpsertedVersion,
    WorkerInfo,
    WorkflowSummary,
    WorkflowVersion,
    WorkflowVersionStatus,
)

R = TypeVar("R")


class _FencedRequest(Protocol):
    """Every state write request: they all carry the same two lease fields."""

    fencing_token: int
    lease_key: str


W = TypeVar("W", bound=_FencedRequest)


class _Unset(enum.Enum):
    # A one-member enum rather than object(): type checkers can narrow on it.
    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset.UNSET
"""Default of arguments where ``None`` is a meaningful value (JSON null)."""


@dataclass(frozen=True)
class Call(Generic[R]):
    """One RPC ready to send: which method, with which request, and how to read the outcome."""

    method: str
    """The RPC's name, as on the generated stub (``"CreateRun"``)."""

    request: Message
    """The request message, already built and encoded."""

    read_reply: Callable[[Any], R]
    """Turns the reply message into what the client method returns."""

    if_not_found: Callable[[], R] | None = None
    """What to return instead of raising NotFound; ``None`` to raise."""

    def fail(self, err: grpc.RpcError) -> R:
        """Handle a failed call: raise it as a WorkflowStateError (or return ``if_not_found()``).

        The error is raised ``from err``, so the gRPC error stays on
        ``__cause__`` for debugging.
        """
        error = error_from_rpc(err)
        if self.if_not_found is not None and isinstance(error, NotFound):
            return self.if_not_found()
        raise error from err


def timeout_seconds(timeout: timedelta | None, default: timedelta | None) -> float | None:
    """The deadline of one call in seconds: its own ``timeout``, else the client's default.

    ``None`` as the client's default means no deadline at all.
    """
    chosen = timeout if timeout is not None else default
    return chosen.total_seconds() if chosen is not None else None


@dataclass(frozen=True)
class Fence:
    """The lease that guards a write: its fencing token and the key it was granted on."""

    fencing_token: int | None
    """The token to check; ``None`` for an unguarded write."""

    lease_key: str | None
    """The lease's key; ``None`` for the run's own key, ``"run:<run_id>"``."""

    def __post_init__(self) -> None:
        # A key alone guards nothing; refuse it rather than let a caller
        # believe the write was fenced.
        if self.fencing_token is None and self.lease_key is not None:
            raise ValueError("lease_key is given without a fencing_token")

    def apply(self, request: W) -> W:
        """Set the fence's fields on ``request`` (any state write request) and return it."""
        if self.fencing_token is not None:
            request.fencing_token = self.fencing_token
        if self.lease_key is not None:
            request.lease_key = self.lease_key
        return request


# --- runs --------------------------------------------------------------------


@dataclass(frozen=True)
class RunEngineFields:
    """What an engine keeps with a run it creates (``create_run``'s keyword arguments)."""

    inline: bool = False
    graph_hash: str = ""
    metadata: Any = None
    """Any JSON value; ``None`` sends none."""
    deterministic: bool = False
    planned_steps: tuple[PlannedStep, ...] = ()


def create_run(workflow: str, input: Any, request_id: str | None, engine: RunEngineFields = RunEngineFields()) -> Call[Run]:
    """CreateRun. Without a request_id one is generated, which makes the call safe to retry."""
    return Call(
        "CreateRun",
        pb.CreateRunRequest(
            workflow=workflow,
            input_json=encode_json(input),
            # gRPC may resend CreateRun after a lost reply; the same key makes
            # the server return the run the first attempt created.
            request_id=request_id or uuid.uuid4().hex,
            inline=engine.inline,
            graph_hash=engine.graph_hash,
            metadata_json=encode_json(engine.metadata) if engine.metadata is not None else "",
            deterministic=engine.deterministic,
            planned_steps=[planned_step_to_proto(step) for step in engine.planned_steps],
        ),
        lambda reply: run_from_proto(reply.run),
    )


def get_run(run_id: str) -> Call[Run | None]:
    """GetRun; a missing run reads as ``None``, like pikku's ``getRun``."""
    return Call(
        "GetRun",
        pb.GetRunRequest(run_id=run_id),
        lambda reply: run_from_proto(reply.run),
        if_not_found=lambda: None,
    )


def get_run_history(run_id: str) -> Call[list[StepAttempt]]:
    """GetRunHistory: every attempt of every step, oldest first."""
    return Call(
        "GetRunHistory",
        pb.GetRunHistoryRequest(run_id=run_id),
        lambda reply: [step_attempt_from_proto(attempt) for attempt in reply.attempts],
    )


def update_run_status(
    run_id: str,
    status: RunStatus,
    output: Any | _Unset,
    error: Failure | BaseException | None,
    fence: Fence,
) -> Call[Run]:
    """UpdateRunStatus; ``output`` UNSET and ``error`` None leave the stored values unchanged."""
    request = pb.UpdateRunStatusRequest(run_id=run_id, status=run_status_to_proto(status))
    if output is not UNSET:
        request.output_json = encode_json(output)
    if error is not None:
        request.error.CopyFrom(failure_to_proto(error))
    return Call("UpdateRunStatus", fence.apply(request), lambda reply: run_from_proto(reply.run))


# --- managing runs -----------------------------------------------------------


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list, bulk cancel or bulk delete is about (every field given must match)."""

    workflow: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def to_proto(self) -> pb.RunFilter:
        message = pb.RunFilter(workflow=self.workflow or "", statuses=[run_status_to_proto(s) for s in self.statuses])
        for name in ("created_after", "created_before", "updated_after", "updated_before"):
            moment = getattr(self, name)
            if moment is not None:
                getattr(message, name).CopyFrom(timestamp_to_proto(moment))
        return message


def list_runs(
    runs: RunFilter, oldest_first: bool, page_size: int | None, page_token: str | None, full: bool
) -> Call[RunPage]:
    """ListRuns: one page; the server's default page size (50) when ``page_size`` is None."""
    request = pb.ListRunsRequest(
        filter=runs.to_proto(),
        order_by=pb.RUN_ORDER_CREATE_TIME_ASC if oldest_first else pb.RUN_ORDER_CREATE_TIME_DESC,
        page_size=page_size or 0,
        page_token=page_token or "",
        view=pb.RUN_VIEW_FULL if full else pb.RUN_VIEW_BASIC,
    )
    return Call("ListRuns", request, run_page_from_proto)


def cancel_run(run_id: str, reason: str | None) -> Call[Run]:
    """CancelRun: the run as stored after it, CANCELLED."""
    return Call("CancelRun", pb.CancelRunRequest(run_id=run_id, reason=reason or ""), lambda reply: run_from_proto(reply.run))


def cancel_runs(runs: RunFilter, max_runs: int, reason: str | None) -> Call[list[str]]:
    """CancelRuns: the ids of the runs cancelled, oldest first."""
    request = pb.CancelRunsRequest(filter=runs.to_proto(), max_runs=max_runs, reason=reason or "")
    return Call("CancelRuns", request, lambda reply: list(reply.run_ids))


def delete_run(run_id: str, force: bool) -> Call[None]:
    """DeleteRun."""
    return Call("DeleteRun", pb.DeleteRunRequest(run_id=run_id, force=force), lambda reply: None)


def delete_runs(runs: RunFilter, max_runs: int, force: bool) -> Call[list[str]]:
    """DeleteRuns: the ids of the runs erased, oldest first."""
    request = pb.DeleteRunsRequest(filter=runs.to_proto(), max_runs=max_runs, force=force)
    return Call("DeleteRuns", request, lambda reply: list(reply.run_ids))


def list_steps(run_id: str) -> Call[list[StepState]]:
    """ListSteps: every step of the run, in insertion order."""
    return Call("ListSteps", pb.ListStepsRequest(run_id=run_id), lambda reply: [step_state_from_proto(step) for step in reply.steps])


def list_workflows() -> Call[list[WorkflowSummary]]:
    """ListWorkflows: every workflow that has runs, with its runs per status."""
    return Call(
        "ListWorkflows",
        pb.ListWorkflowsRequest(),
        lambda reply: [workflow_summary_from_proto(summary) for summary in reply.workflows],
    )


# --- retention and workers ---------------------------------------------------


def set_retention_policy(workflow: str | None, statuses: tuple[RunStatus, ...], keep: timedelta) -> Call[RetentionPolicy]:
    """SetRetentionPolicy: the policy as stored (an upsert on workflow and the set of statuses)."""
    request = pb.SetRetentionPolicyRequest(
        workflow=workflow or "", statuses=[run_status_to_proto(s) for s in statuses], keep=duration_to_proto(keep)
    )
    return Call("SetRetentionPolicy", request, lambda reply: retention_policy_from_proto(reply.policy))


def list_retention_policies() -> Call[list[RetentionPolicy]]:
    """ListRetentionPolicies: every policy, by id."""
    return Call(
        "ListRetentionPolicies",
        pb.ListRetentionPoliciesRequest(),
        lambda reply: [retention_policy_from_proto(policy) for policy in reply.policies],
    )


def delete_retention_policy(policy_id: int) -> Call[None]:
    """DeleteRetentionPolicy."""
    return Call("DeleteRetentionPolicy", pb.DeleteRetentionPolicyRequest(policy_id=policy_id), lambda reply: None)


def set_dispatch_defaults(
    rpc_name: str, options: StepOptions, concurrency_limit: int | None, rate_limit: int | None, rate_period: timedelta | None
) -> Call[DispatchDefaults]:
    """SetDispatchDefaults: the defaults as stored (an upsert on the rpc name)."""
    defaults = pb.DispatchDefaults(rpc_name=rpc_name, concurrency_limit=concurrency_limit, rate_limit=rate_limit)
    step_options_to_proto(options, defaults.options)
    if rate_period is not None:
        defaults.rate_period.CopyFrom(duration_to_proto(rate_period))
    request = pb.SetDispatchDefaultsRequest(defaults=defaults)
    return Call("SetDispatchDefaults", request, lambda reply: dispatch_defaults_from_proto(reply.defaults))


def list_dispatch_defaults() -> Call[list[DispatchDefaults]]:
    """ListDispatchDefaults: every rpc name's defaults, by rpc name."""
    return Call(
        "ListDispatchDefaults",
        pb.ListDispatchDefaultsRequest(),
        lambda reply: [dispatch_defaults_from_proto(defaults) for defaults in reply.defaults],
    )


def delete_dispatch_defaults(rpc_name: str) -> Call[None]:
    """DeleteDispatchDefaults."""
    return Call("DeleteDispatchDefaults", pb.DeleteDispatchDefaultsRequest(rpc_name=rpc_name), lambda reply: None)


def list_workers() -> Call[list[WorkerInfo]]:
    """ListWorkers: the worker streams connected to any server, by connect time."""
    return Call("ListWorkers", pb.ListWorkersRequest(), lambda reply: [worker_info_from_proto(worker) for worker in reply.workers])


# --- schedules ---------------------------------------------------------------


def create_schedule(
    schedule_id: str,
    workflow: str,
    input: Any,
    cron: str | None,
    interval: timedelta | None,
    timezone: str | None,
    overlap: ScheduleOverlap,
    catch_up: ScheduleCatchUp,
) -> Call[Schedule]:
    """CreateSchedule: the schedule as stored (the same one for a repeated request)."""
    request = pb.CreateScheduleRequest(
        schedule_id=schedule_id,
        workflow=workflow,
        cron=cron or "",
        timezone=timezone or "",
        input_json=encode_json(input),
        overlap=SCHEDULE_OVERLAP_TO_PROTO[overlap],
        catch_up=SCHEDULE_CATCH_UP_TO_PROTO[catch_up],
    )
    if interval is not None:
        request.interval.CopyFrom(duration_to_proto(interval))
    return Call("CreateSchedule", request, lambda reply: schedule_from_proto(reply.schedule))


def list_schedules(page_size: int | None, page_token: str | None) -> Call[SchedulePage]:
    """ListSchedules: one page by id; the server's default page size (50) when ``page_size`` is None."""
    request = pb.ListSchedulesRequest(page_size=page_size or 0, page_token=page_token or "")
    return Call("ListSchedules", request, schedule_page_from_proto)


def pause_schedule(schedule_id: str) -> Call[Schedule]:
    """PauseSchedule: the schedule as stored after it."""
    return Call("PauseSchedule", pb.PauseScheduleRequest(schedule_id=schedule_id), lambda reply: schedule_from_proto(reply.schedule))


def resume_schedule(schedule_id: str) -> Call[Schedule]:
    """ResumeSchedule: the schedule as stored after it."""
    return Call("ResumeSchedule", pb.ResumeScheduleRequest(schedule_id=schedule_id), lambda reply: schedule_from_proto(reply.schedule))


def delete_schedule(schedule_id: str) -> Call[None]:
    """DeleteSchedule."""
    return Call("DeleteSchedule", pb.DeleteScheduleRequest(schedule_id=schedule_id), lambda reply: None)


# --- steps -------------------------------------------------------------------


def _read_step(reply: Any) -> StepState:
    return step_state_from_proto(reply.step)


def insert_step_state(
    run_id: str,
    step_name: str,
    rpc_name: str | None,
    data: Any,
    options: StepOptions,
    fence: Fence,
    from_step_name: str | None = None,
) -> Call[StepState]:
    """InsertStepState; options are sent only when given. ``rpc_name`` None or empty: a step
    without a function of its own (never handed to a worker)."""
    request = pb.InsertStepStateRequest(
        run_id=run_id,
        step_name=step_name,
        rpc_name=rpc_name or "",
        data_json=encode_json(data),
        from_step_name=from_step_name or "",
    )
    # Touching a sub-field marks `options` (and the optional field) as set, so
    # an option the caller did not give stays unset on the wire.
    step_options_to_proto(options, request.options)
    return Call("InsertStepState", fence.apply(request), _read_step)


def get_step_state(run_id: str, step_name: str) -> Call[StepState]:
    """GetStepState; a missing step raises NotFound, like pikku's ``getStepState`` throws."""
    return Call(
        "GetStepState", pb.GetStepStateRequest(run_id=run_id, step_name=step_name), _read_step
    )


def set_step_scheduled(
    step_id: str, not_before: datetime | None, delay: timedelta | None, fence: Fence, options: StepOptions
) -> Call[StepState]:
    """SetStepScheduled; ``not_before`` and ``delay`` are sent only when given, never both;
    the options given replace the step's."""
    if not_before is not None and delay is not None:
        raise ValueError("give not_before or delay, not both")
    request = pb.SetStepScheduledRequest(step_id=step_id)
    step_options_to_proto(options, request.options)
    if not_before is not None:
        request.not_before.CopyFrom(timestamp_to_proto(not_before))
    if delay is not None:
        request.delay.CopyFrom(duration_to_proto(delay))
    return Call("SetStepScheduled", fence.apply(request), _read_step)


def set_step_running(step_id: str, fence: Fence) -> Call[StepState]:
    """SetStepRunning."""
    return Call(
        "SetStepRunning", fence.apply(pb.SetStepRunningRequest(step_id=step_id)), _read_step
    )


def set_step_result(step_id: str, result: Any, fence: Fence) -> Call[StepState]:
    """SetStepResult."""
    return Call(
        "SetStepResult",
        fence.apply(pb.SetStepResultRequest(step_id=step_id, result_json=encode_json(result))),
        _read_step,
    )


def set_step_error(step_id: str, error: Failure | BaseException, fence: Fence) -> Call[StepState]:
    """SetStepError; an exception is described with ``Failure.from_exception``."""
    return Call(
        "SetStepError",
        fence.apply(pb.SetStepErrorRequest(step_id=step_id, error=failure_to_proto(error))),
        _read_step,
    )


def create_retry_attempt(step_id: str, status: StepStatus, fence: Fence) -> Call[StepState]:
    """CreateRetryAttempt."""
    return Call(
        "CreateRetryAttempt",
        fence.apply(
            pb.CreateRetryAttemptRequest(step_id=step_id, status=step_status_to_proto(status))
        ),
        _read_step,
    )


# --- engine state ------------------------------------------------------------


def set_step_suspended(step_id: str, fence: Fence) -> Call[StepState]:
    """SetStepSuspended."""
    return Call("SetStepSuspended", fence.apply(pb.SetStepSuspendedRequest(step_id=step_id)), _read_step)


def set_step_child_run(step_id: str, child_run_id: str, fence: Fence) -> Call[StepState]:
    """SetStepChildRun."""
    return Call(
        "SetStepChildRun",
        fence.apply(pb.SetStepChildRunRequest(step_id=step_id, child_run_id=child_run_id)),
        _read_step,
    )


def set_step_branch(step_id: str, branch_key: str, fence: Fence) -> Call[StepState]:
    """SetStepBranch."""
    return Call("SetStepBranch", fence.apply(pb.SetStepBranchRequest(step_id=step_id, branch_key=branch_key)), _read_step)


def claim_step(run_id: str, step_name: str, rpc_name: str | None, fence: Fence) -> Call[ClaimedStep]:
    """ClaimStep; ``rpc_name`` None or empty names a step without a function."""
    request = pb.ClaimStepRequest(run_id=run_id, step_name=step_name, rpc_name=rpc_name or "")
    return Call("ClaimStep", fence.apply(request), claimed_step_from_proto)


def update_run_state(run_id: str, name: str, value: Any, fence: Fence) -> Call[None]:
    """UpdateRunState: ``value`` is any JSON value."""
    request = pb.UpdateRunStateRequest(run_id=run_id, name=name, value_json=encode_json(value))
    return Call("UpdateRunState", fence.apply(request), lambda reply: None)


def get_run_state(run_id: str) -> Call[dict[str, Any]]:
    """GetRunState: the run's variables by name."""

    def read(reply: pb.GetRunStateResponse) -> dict[str, Any]:
        return decode_json_entries(reply.state_json, "run state")

    return Call("GetRunState", pb.GetRunStateRequest(run_id=run_id), read)


def upsert_workflow_version(
    workflow: str, graph_hash: str, graph: Any, source: str, status: WorkflowVersionStatus | None
) -> Call[UpsertedVersion]:
    """UpsertWorkflowVersion; ``status`` None lets the server choose (ACTIVE)."""
    request = pb.UpsertWorkflowVersionRequest(
        workflow=workflow,
        graph_hash=graph_hash,
        graph_json=encode_json(graph),
        source=source,
        status=version_status_to_proto(status) if status is not None else pb.WORKFLOW_VERSION_STATUS_UNSPECIFIED,
    )
    return Call("UpsertWorkflowVersion", request, upserted_version_from_proto)


def get_workflow_version(workflow: str, graph_hash: str) -> Call[WorkflowVersion]:
    """GetWorkflowVersion; NotFound for an unknown version."""
    request = pb.GetWorkflowVersionRequest(workflow=workflow, graph_hash=graph_hash)
    return Call("GetWorkflowVersion", request, lambda reply: workflow_version_from_proto(reply.version))


def update_workflow_version_status(workflow: str, graph_hash: str, status: WorkflowVersionStatus) -> Call[WorkflowVersion]:
    """UpdateWorkflowVersionStatus."""
    request = pb.UpdateWorkflowVersionStatusRequest(workflow=workflow, graph_hash=graph_hash, status=version_status_to_proto(status))
    return Call("UpdateWorkflowVersionStatus", request, lambda reply: workflow_version_from_proto(reply.version))


def list_stalled_runs(updated_before: datetime, max_runs: int) -> Call[list[str]]:
    """ListStalledRuns: run ids, oldest change first."""
    request = pb.ListStalledRunsRequest(updated_before=timestamp_to_proto(updated_before), max_runs=max_runs)
    return Call("ListStalledRuns", request, lambda reply: list(reply.run_ids))


def list_undispatched_steps(updated_before: datetime, max_steps: int) -> Call[list[StepRef]]:
    """ListUndispatchedSteps: the steps, oldest change first."""
    request = pb.ListUndispatchedStepsRequest(updated_before=timestamp_to_proto(updated_before), max_steps=max_steps)
    return Call("ListUndispatchedSteps", request, lambda reply: [step_ref_from_proto(ref) for ref in reply.steps])


# --- leases ------------------------------------------------------------------


def list_leases(key_prefix: str | None, page_size: int | None, page_token: str | None) -> Call[LeasePage]:
    """ListLeases: one page; the server's default page size (50) when ``page_size`` is None."""
    request = pb.ListLeasesRequest(key_prefix=key_prefix or "", page_size=page_size or 0, page_token=page_token or "")
    return Call("ListLeases", request, lease_page_from_proto)


def get_lease(key: str) -> Call[LeaseInfo | None]:
    """GetLease; a free key (NOT_FOUND) reads as ``None``."""
    return Call(
        "GetLease",
        pb.GetLeaseRequest(key=key),
        lambda reply: lease_info_from_proto(reply.lease),
        if_not_found=lambda: None,
    )
