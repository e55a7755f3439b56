"""Protobuf <-> Python conversions, shared by the sync and the async client.

Pure functions, no I/O: the only place that knows how a proto field maps to a
Python value. Unset proto fields (checked with ``HasField``) become ``None``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, get_args

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from workflowstate import v1 as pb

from ._types import (
    ClaimedStep,
    DispatchDefaults,
    Failure,
    LeaseInfo,
    LeasePage,
    LeaseLostReason,
    PlannedStep,
    RetentionPolicy,
    Run,
    RunEvent,
    RunPage,
    RunStatus,
    Schedule,
    ScheduleCatchUp,
    ScheduleOverlap,
    SchedulePage,
    StepAttempt,
    StepChange,
    StepRef,
    StepOptions,
    StepState,
    StepStatus,
    StepTask,
    UndecodableJson,
    UpsertedVersion,
    WorkerInfo,
    WorkflowSummary,
    WorkflowVersion,
    WorkflowVersionStatus,
)

# One dict per direction and enum. Proto UNSPECIFIED (0) has no Python member on
# purpose: the server never stores it, and sending it is INVALID_ARGUMENT.
_RUN_STATUS_TO_PROTO: dict[RunStatus, pb.RunStatus.ValueType] = {
    RunStatus.RUNNING: pb.RUN_STATUS_RUNNING,
    RunStatus.COMPLETED: pb.RUN_STATUS_COMPLETED,
    RunStatus.FAILED: pb.RUN_STATUS_FAILED,
    RunStatus.CANCELLED: pb.RUN_STATUS_CANCELLED,
    RunStatus.SUSPENDED: pb.RUN_STATUS_SUSPENDED,
}
_RUN_STATUS_FROM_PROTO: dict[int, RunStatus] = {v: k for k, v in _RUN_STATUS_TO_PROTO.items()}

_STEP_STATUS_TO_PROTO: dict[StepStatus, pb.StepStatus.ValueType] = {
    StepStatus.PENDING: pb.STEP_STATUS_PENDING,
    StepStatus.SCHEDULED: pb.STEP_STATUS_SCHEDULED,
    StepStatus.RUNNING: pb.STEP_STATUS_RUNNING,
    StepStatus.SUCCEEDED: pb.STEP_STATUS_SUCCEEDED,
    StepStatus.FAILED: pb.STEP_STATUS_FAILED,
    StepStatus.SUSPENDED: pb.STEP_STATUS_SUSPENDED,
}
_STEP_STATUS_FROM_PROTO: dict[int, StepStatus] = {v: k for k, v in _STEP_STATUS_TO_PROTO.items()}

_VERSION_STATUS_TO_PROTO: dict[WorkflowVersionStatus, pb.WorkflowVersionStatus.ValueType] = {
    WorkflowVersionStatus.DRAFT: pb.WORKFLOW_VERSION_STATUS_DRAFT,
    WorkflowVersionStatus.ACTIVE: pb.WORKFLOW_VERSION_STATUS_ACTIVE,
    WorkflowVersionStatus.DECLINED: pb.WORKFLOW_VERSION_STATUS_DECLINED,
}
_VERSION_STATUS_FROM_PROTO: dict[int, WorkflowVersionStatus] = {v: k for k, v in _VERSION_STATUS_TO_PROTO.items()}

# Only the server's reasons: STREAM_BROKEN and DEADLINE_PASSED are the client's own.
_LEASE_LOST_REASON_FROM_PROTO: dict[int, LeaseLostReason] = {
    pb.LEASE_LOST_REASON_EXPIRED: LeaseLostReason.EXPIRED,
    pb.LEASE_LOST_REASON_TAKEN_OVER: LeaseLostReason.TAKEN_OVER,
    pb.LEASE_LOST_REASON_SERVER_SHUTDOWN: LeaseLostReason.SERVER_SHUTDOWN,
}


# --- JSON payloads -----------------------------------------------------------


def encode_json(value: Any) -> str:
    """Encode a caller's value as compact JSON text.

    Raises ``TypeError`` for a value JSON cannot hold and ``ValueError`` for
    NaN/Infinity (not valid JSON, the server would refuse it anyway), before
    any RPC is made.
    """
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


_NUMBER_TOKEN = re.compile(r'"\\u0000(\d+)\\u0000"')
"""A number of decode_json_entries' second reading, as json.dumps writes it."""


def decode_json(text: str, field: str) -> Any:
    """Decode JSON text from the server; empty text means JSON null.

    What Python's json cannot read (an integer past ``sys.get_int_max_str_digits()``, nesting past
    the recursion limit) becomes an :class:`UndecodableJson` naming ``field``, in the value's place:
    one such value must not make a whole run, page or task unreadable.
    """
    # The server never sends "" for a stored value, but the contract says
    # empty means null, so read it that way rather than fail.
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        return UndecodableJson(field, str(err), text)


def decode_json_entries(text: str, field: str) -> dict[str, Any]:
    """Decode a JSON object of named values (a run's state): a value that cannot be decoded is an
    :class:`UndecodableJson` named ``field 'name'``, and the others are decoded as usual."""
    value = decode_json(text, field)
    if not isinstance(value, UndecodableJson):
        return dict(value) if isinstance(value, dict) else {}
    # Read again with every number kept as a token, then decode each value alone from its text (the
    # tokens put back). A token holds NUL, which no string stored in jsonb can: it never matches stored text.
    literals: list[str] = []

    def token(literal: str) -> str:
        literals.append(literal)
        return f"\x00{len(literals) - 1}\x00"

    try:
        entries = json.loads(text, parse_int=token, parse_float=token)
    except (ValueError, RecursionError):
        entries = None
    if not isinstance(entries, dict):
        raise ValueError(str(value))  # nothing of it can be read: say so rather than hand out a wrong state
    decoded: dict[str, Any] = {}
    for name, entry in entries.items():
        # json.dumps with these separators writes a value as jsonb does: the text the server holds.
        entry_text = json.dumps(entry, ensure_ascii=False, separators=(", ", ": "))
        entry_text = _NUMBER_TOKEN.sub(lambda match: literals[int(match.group(1))], entry_text)
        decoded[name] = decode_json(entry_text, f"{field} {name!r}")
    return decoded


# --- enums -------------------------------------------------------------------


def run_status_to_proto(status: RunStatus) -> pb.RunStatus.ValueType:
    """The proto value of ``status`` (also accepts its string value, e.g. ``"completed"``)."""
    return _RUN_STATUS_TO_PROTO[RunStatus(status)]


def run_status_from_proto(value: int) -> RunStatus:
    """The Python member of a proto RunStatus; raises ValueError for a value we do not know."""
    try:
        return _RUN_STATUS_FROM_PROTO[value]
    except KeyError:
        raise ValueError(
            f"server sent unknown RunStatus {value}; is this client older than the server?"
        ) from None


def step_status_to_proto(status: StepStatus) -> pb.StepStatus.ValueType:
    """The proto value of ``status`` (also accepts its string value, e.g. ``"pending"``)."""
    return _STEP_STATUS_TO_PROTO[StepStatus(status)]


def step_status_from_proto(value: int) -> StepStatus:
    """The Python member of a proto StepStatus; raises ValueError for a value we do not know."""
    try:
        return _STEP_STATUS_FROM_PROTO[value]
    except KeyError:
        raise ValueError(
            f"server sent unknown StepStatus {value}; is this client older than the server?"
        ) from None


def version_status_to_proto(status: WorkflowVersionStatus) -> pb.WorkflowVersionStatus.ValueType:
    """The proto value of ``status`` (also accepts its string value, e.g. ``"active"``)."""
    return _VERSION_STATUS_TO_PROTO[WorkflowVersionStatus(status)]


def version_status_from_proto(value: int) -> WorkflowVersionStatus:
    """The Python member of a proto WorkflowVersionStatus; raises ValueError for a value we do not know."""
    try:
        return _VERSION_STATUS_FROM_PROTO[value]
    except KeyError:
        raise ValueError(
            f"server sent unknown WorkflowVersionStatus {value}; is this client older than the server?"
        ) from None


def lease_lost_reason_from_proto(value: int) -> LeaseLostReason:
    """The Python reason of a proto LeaseLostReason; UNKNOWN for a value we do not know."""
    # Unlike a status, an unknown reason must not raise: it arrives on a
    # background reader, and the one thing that matters (the lease is lost)
    # is known anyway.
    return _LEASE_LOST_REASON_FROM_PROTO.get(value, LeaseLostReason.UNKNOWN)


# --- times -------------------------------------------------------------------


def _time(ts: Timestamp) -> datetime:
    # Through a typed local: types-protobuf resolves ToDatetime on the
    # generated class as Any, which mypy --strict refuses to return.
    moment: datetime = ts.ToDatetime(tzinfo=timezone.utc)
    return moment


def _required_time(message: Any, field: str) -> datetime:
    # create_time/update_time are always set by the server; typing them as
    # Optional would make every caller check for a case that cannot happen.
    if not message.HasField(field):
        raise ValueError(f"server sent a {type(message).__name__} without {field}")
    return _time(getattr(message, field))


def _optional_time(message: Any, field: str) -> datetime | None:
    return _time(getattr(message, field)) if message.HasField(field) else None


def expire_time_from_proto(message: pb.LeaseGranted | pb.LeaseKeptAlive) -> datetime:
    """The ``expire_time`` of a grant or a keepalive answer (UTC)."""
    return _required_time(message, "expire_time")


def timestamp_to_proto(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of ``moment``, which must be timezone-aware.

    Raises ``ValueError`` for a naive datetime: guessing its zone would move
    the moment by hours without anyone noticing.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} is a naive datetime; give a timezone-aware one (e.g. UTC)")
    timestamp = Timestamp()
    timestamp.FromDatetime(moment)
    return timestamp


def duration_to_proto(delay: timedelta) -> Duration:
    """A protobuf Duration of ``delay``."""
    duration = Duration()
    duration.FromTimedelta(delay)
    return duration


# --- failures ----------------------------------------------------------------


def failure_to_proto(error: Failure | BaseException) -> pb.Failure:
    """The proto Failure of ``error``; an exception goes through ``Failure.from_exception``."""
    if isinstance(error, BaseException):
        error = Failure.from_exception(error)
    return pb.Failure(message=error.message, stack=error.stack, code=error.code)


def _failure(message: Any) -> Failure | None:
    if not message.HasField("error"):
        return None
    error = message.error
    return Failure(message=error.message, stack=error.stack, code=error.code)


def _optional_json(message: Any, field: str, name: str) -> Any:
    return decode_json(getattr(message, field), name) if message.HasField(field) else None


# --- resources ---------------------------------------------------------------


def run_from_proto(run: pb.Run) -> Run:
    """The Python Run of a proto Run."""
    return Run(
        run_id=run.run_id,
        workflow=run.workflow,
        status=run_status_from_proto(run.status),
        input=decode_json(run.input_json, "Run.input"),
        output=_optional_json(run, "output_json", "Run.output"),
        error=_failure(run),
        create_time=_required_time(run, "create_time"),
        update_time=_required_time(run, "update_time"),
        inline=run.inline,
        graph_hash=run.graph_hash or None,
        metadata=_optional_json(run, "metadata_json", "Run.metadata"),
        deterministic=run.deterministic,
        planned_steps=tuple(PlannedStep(step.step_name, step.display_name) for step in run.planned_steps),
        schedule_id=run.schedule_id or None,
        schedule_time=_optional_time(run, "schedule_time"),
    )


def planned_step_to_proto(step: PlannedStep) -> pb.PlannedStep:
    """The proto PlannedStep of a Python one."""
    return pb.PlannedStep(step_name=step.step_name, display_name=step.display_name)


def lease_page_from_proto(reply: pb.ListLeasesResponse) -> LeasePage:
    """The Python LeasePage of a ListLeases reply."""
    return LeasePage([lease_info_from_proto(lease) for lease in reply.leases], reply.next_page_token or None)


def run_page_from_proto(reply: pb.ListRunsResponse) -> RunPage:
    """The Python RunPage of a ListRuns reply."""
    return RunPage([run_from_proto(run) for run in reply.runs], reply.next_page_token or None)


def workflow_summary_from_proto(summary: pb.WorkflowSummary) -> WorkflowSummary:
    """The Python WorkflowSummary of a proto one (statuses the client does not know are left out)."""
    counts = dict.fromkeys(RunStatus, 0)
    for entry in summary.run_counts:
        if entry.status in _RUN_STATUS_FROM_PROTO:
            counts[_RUN_STATUS_FROM_PROTO[entry.status]] = entry.run_count
    return WorkflowSummary(summary.workflow, counts)


# --- dispatch options ----------------------------------------------------------

_OptionDuration = Literal["retry_delay", "max_retry_delay", "start_to_close", "schedule_to_start"]
_OptionNumber = Literal["retries", "backoff_coefficient", "jitter", "priority"]
_OPTION_DURATIONS: tuple[_OptionDuration, ...] = get_args(_OptionDuration)
_OPTION_NUMBERS: tuple[_OptionNumber, ...] = get_args(_OptionNumber)


def step_options_to_proto(options: StepOptions, target: pb.StepOptions) -> None:
    """Set on ``target`` the options given (an option left ``None`` stays unset on the wire)."""
    for name in _OPTION_DURATIONS:
        value = getattr(options, name)
        if value is not None:
            getattr(target, name).CopyFrom(duration_to_proto(value))
    for number in _OPTION_NUMBERS:
        value = getattr(options, number)
        if value is not None:
            setattr(target, number, value)
    if options.concurrency_key:
        target.concurrency_key = options.concurrency_key


def step_options_from_proto(options: pb.StepOptions) -> StepOptions:
    """The Python StepOptions of a proto one (unset fields are ``None``)."""
    durations = {name: getattr(options, name).ToTimedelta() for name in _OPTION_DURATIONS if options.HasField(name)}
    numbers = {name: getattr(options, name) for name in _OPTION_NUMBERS if options.HasField(name)}
    return StepOptions(concurrency_key=options.concurrency_key or None, **durations, **numbers)


def dispatch_defaults_from_proto(defaults: pb.DispatchDefaults) -> DispatchDefaults:
    """The Python DispatchDefaults of a proto one."""
    return DispatchDefaults(
        rpc_name=defaults.rpc_name,
        options=step_options_from_proto(defaults.options),
        concurrency_limit=defaults.concurrency_limit if defaults.HasField("concurrency_limit") else None,
        rate_limit=defaults.rate_limit if defaults.HasField("rate_limit") else None,
        rate_period=defaults.rate_period.ToTimedelta() if defaults.HasField("rate_period") else None,
        update_time=_required_time(defaults, "update_time"),
    )


def retention_policy_from_proto(policy: pb.RetentionPolicy) -> RetentionPolicy:
    """The Python RetentionPolicy of a proto one (statuses the client does not know are left out)."""
    return RetentionPolicy(
        policy_id=policy.policy_id,
        workflow=policy.workflow or None,
        statuses=tuple(_RUN_STATUS_FROM_PROTO[s] for s in policy.statuses if s in _RUN_STATUS_FROM_PROTO),
        keep=policy.keep.ToTimedelta(),
        create_time=_required_time(policy, "create_time"),
        update_time=_required_time(policy, "update_time"),
    )


SCHEDULE_OVERLAP_TO_PROTO = {ScheduleOverlap.SKIP: pb.SCHEDULE_OVERLAP_SKIP, ScheduleOverlap.ALLOW: pb.SCHEDULE_OVERLAP_ALLOW}
SCHEDULE_CATCH_UP_TO_PROTO = {ScheduleCatchUp.SKIP: pb.SCHEDULE_CATCH_UP_SKIP, ScheduleCatchUp.LATEST: pb.SCHEDULE_CATCH_UP_LATEST}
_SCHEDULE_OVERLAP_FROM_PROTO = {number: overlap for overlap, number in SCHEDULE_OVERLAP_TO_PROTO.items()}
_SCHEDULE_CATCH_UP_FROM_PROTO = {number: catch_up for catch_up, number in SCHEDULE_CATCH_UP_TO_PROTO.items()}


def schedule_from_proto(schedule: pb.Schedule) -> Schedule:
    """The Python Schedule of a proto one (unknown enum values read as SKIP, the server's default)."""
    return Schedule(
        schedule_id=schedule.schedule_id,
        workflow=schedule.workflow,
        cron=schedule.cron or None,
        interval=schedule.interval.ToTimedelta() if schedule.HasField("interval") else None,
        timezone=schedule.timezone,
        input=decode_json(schedule.input_json, "Schedule.input"),
        overlap=_SCHEDULE_OVERLAP_FROM_PROTO.get(schedule.overlap, ScheduleOverlap.SKIP),
        catch_up=_SCHEDULE_CATCH_UP_FROM_PROTO.get(schedule.catch_up, ScheduleCatchUp.SKIP),
        paused=schedule.paused,
        next_fire_time=_optional_time(schedule, "next_fire_time"),
        last_run_id=schedule.last_run_id or None,
        last_schedule_time=_optional_time(schedule, "last_schedule_time"),
        last_run_status=_RUN_STATUS_FROM_PROTO.get(schedule.last_run_status),
        overlap_skips=schedule.overlap_skips,
        create_time=_required_time(schedule, "create_time"),
        update_time=_required_time(schedule, "update_time"),
    )


def schedule_page_from_proto(reply: pb.ListSchedulesResponse) -> SchedulePage:
    """The Python SchedulePage of a ListSchedules reply."""
    return SchedulePage([schedule_from_proto(schedule) for schedule in reply.schedules], reply.next_page_token or None)


def worker_info_from_proto(worker: pb.WorkerInfo) -> WorkerInfo:
    """The Python WorkerInfo of a proto one."""
    return WorkerInfo(
        worker_id=worker.worker_id,
        stream_id=worker.stream_id,
        rpc_names=list(worker.rpc_names),
        max_in_flight=worker.max_in_flight,
        tasks_in_flight=worker.tasks_in_flight,
        task_lease=worker.task_lease.ToTimedelta(),
        connect_time=_required_time(worker, "connect_time"),
        heartbeat_time=_required_time(worker, "heartbeat_time"),
        server_id=worker.server_id,
        server_address=worker.server_address,
    )


def step_state_from_proto(step: pb.StepState) -> StepState:
    """The Python StepState of a proto StepState."""
    return StepState(
        step_id=step.step_id,
        run_id=step.run_id,
        step_name=step.step_name,
        rpc_name=step.rpc_name,
        data=decode_json(step.data_json, "StepState.data"),
        status=step_status_from_proto(step.status),
        result=_optional_json(step, "result_json", "StepState.result"),
        error=_failure(step),
        attempt_count=step.attempt_count,
        retries=step.retries if step.HasField("retries") else None,
        retry_delay=step.retry_delay.ToTimedelta() if step.HasField("retry_delay") else None,
        create_time=_required_time(step, "create_time"),
        update_time=_required_time(step, "update_time"),
        scheduled_time=_optional_time(step, "scheduled_time"),
        running_time=_optional_time(step, "running_time"),
        succeeded_time=_optional_time(step, "succeeded_time"),
        failed_time=_optional_time(step, "failed_time"),
        not_before=_optional_time(step, "not_before"),
        worker_id=step.worker_id or None,
        from_step_name=step.from_step_name or None,
        child_run_id=step.child_run_id or None,
        branch_key=step.branch_key or None,
        options=step_options_from_proto(step.options),
    )


def claimed_step_from_proto(reply: pb.ClaimStepResponse) -> ClaimedStep:
    """The Python ClaimedStep of a ClaimStep reply."""
    return ClaimedStep(claimed=reply.claimed, step=step_state_from_proto(reply.step))


def step_ref_from_proto(ref: pb.StepRef) -> StepRef:
    """The Python StepRef of a proto one."""
    return StepRef(run_id=ref.run_id, step_id=ref.step_id)


def workflow_version_from_proto(version: pb.WorkflowVersion) -> WorkflowVersion:
    """The Python WorkflowVersion of a proto one."""
    return WorkflowVersion(
        workflow=version.workflow,
        graph_hash=version.graph_hash,
        graph=decode_json(version.graph_json, "WorkflowVersion.graph"),
        source=version.source,
        status=version_status_from_proto(version.status),
        create_time=_required_time(version, "create_time"),
        update_time=_required_time(version, "update_time"),
    )


def upserted_version_from_proto(reply: pb.UpsertWorkflowVersionResponse) -> UpsertedVersion:
    """The Python UpsertedVersion of an UpsertWorkflowVersion reply."""
    return UpsertedVersion(version=workflow_version_from_proto(reply.version), created=reply.created)


def step_attempt_from_proto(attempt: pb.StepAttempt) -> StepAttempt:
    """The Python StepAttempt of a proto StepAttempt."""
    return StepAttempt(
        step_id=attempt.step_id,
        step_name=attempt.step_name,
        attempt=attempt.attempt,
        status=step_status_from_proto(attempt.status),
        result=_optional_json(attempt, "result_json", "StepAttempt.result"),
        error=_failure(attempt),
        create_time=_required_time(attempt, "create_time"),
        update_time=_required_time(attempt, "update_time"),
        scheduled_time=_optional_time(attempt, "scheduled_time"),
        running_time=_optional_time(attempt, "running_time"),
        succeeded_time=_optional_time(attempt, "succeeded_time"),
        failed_time=_optional_time(attempt, "failed_time"),
    )


def lease_info_from_proto(lease: pb.LeaseInfo) -> LeaseInfo:
    """The Python LeaseInfo of a proto LeaseInfo."""
    return LeaseInfo(
        key=lease.key,
        holder=lease.holder,
        fencing_token=lease.fencing_token,
        acquire_time=_required_time(lease, "acquire_time"),
        expire_time=_required_time(lease, "expire_time"),
    )


def run_event_from_proto(event: pb.RunEvent) -> RunEvent:
    """The Python RunEvent of a proto RunEvent."""
    kind = event.WhichOneof("change")
    run_status = run_status_from_proto(event.run_changed.status) if kind == "run_changed" else None
    step = None
    if kind == "step_changed":
        changed = event.step_changed
        step = StepChange(
            step_id=changed.step_id,
            step_name=changed.step_name,
            attempt=changed.attempt,
            status=step_status_from_proto(changed.status),
        )
    return RunEvent(
        event_id=event.event_id,
        run_id=event.run_id,
        workflow=event.workflow,
        event_time=_required_time(event, "event_time"),
        run_status=run_status,
        step=step,
    )


def step_task_from_proto(task: pb.StepTask) -> StepTask:
    """The Python StepTask of a proto StepTask; data Python cannot decode is an UndecodableJson."""
    return StepTask(
        step_id=task.step_id,
        run_id=task.run_id,
        step_name=task.step_name,
        rpc_name=task.rpc_name,
        data=decode_json(task.data_json, "StepTask.data"),
        attempt=task.attempt,
        deadline=_required_time(task, "deadline"),
        timeout_time=_optional_time(task, "timeout_time"),
    )
