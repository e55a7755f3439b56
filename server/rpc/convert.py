"""Translate between protobuf messages and the store's Python values.

Rows come from the store as dicts (jsonb columns as JSON text); this module builds the protobuf
messages from them and maps the contract's enums to the stored statuses and back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from workflowstate import v1 as pb

from ..core.errors import InvalidArgument
from ..dispatch.rows import WorkerStreamRow
from ..events.rows import EventRow
from ..leases.rows import HeldLeaseRow
from ..retention.rows import PolicyRow
from ..schedules.rows import ScheduleRow
from ..schedules.timing import CatchUp, Overlap
from ..state.rows import AttemptRow, ClaimedTaskRow, RunRecord, RunSummary, StepOptionColumns, StepRecord, VersionRow
from ..state.store import FailureRecord
from ..state.transitions import RunStatus, StepStatus, VersionStatus

RUN_STATUS_TO_PROTO = {
    RunStatus.RUNNING: pb.RUN_STATUS_RUNNING,
    RunStatus.COMPLETED: pb.RUN_STATUS_COMPLETED,
    RunStatus.FAILED: pb.RUN_STATUS_FAILED,
    RunStatus.CANCELLED: pb.RUN_STATUS_CANCELLED,
    RunStatus.SUSPENDED: pb.RUN_STATUS_SUSPENDED,
}
RUN_STATUS_FROM_PROTO = {number: status for status, number in RUN_STATUS_TO_PROTO.items()}
RUN_STATUS_TO_PROTO_NAME = {status: pb.RunStatus.Name(number) for status, number in RUN_STATUS_TO_PROTO.items()}

STEP_STATUS_TO_PROTO = {
    StepStatus.PENDING: pb.STEP_STATUS_PENDING,
    StepStatus.SCHEDULED: pb.STEP_STATUS_SCHEDULED,
    StepStatus.RUNNING: pb.STEP_STATUS_RUNNING,
    StepStatus.SUCCEEDED: pb.STEP_STATUS_SUCCEEDED,
    StepStatus.FAILED: pb.STEP_STATUS_FAILED,
    StepStatus.SUSPENDED: pb.STEP_STATUS_SUSPENDED,
}
STEP_STATUS_FROM_PROTO = {number: status for status, number in STEP_STATUS_TO_PROTO.items()}

VERSION_STATUS_TO_PROTO = {
    VersionStatus.DRAFT: pb.WORKFLOW_VERSION_STATUS_DRAFT,
    VersionStatus.ACTIVE: pb.WORKFLOW_VERSION_STATUS_ACTIVE,
    VersionStatus.DECLINED: pb.WORKFLOW_VERSION_STATUS_DECLINED,
}
VERSION_STATUS_FROM_PROTO = {number: status for status, number in VERSION_STATUS_TO_PROTO.items()}

_T = TypeVar("_T")


def _enum_from_proto(field: str, number: int, enum: Any, table: Mapping[Any, _T]) -> _T:
    """The value `number` stands for in `table`; INVALID_ARGUMENT naming the field and the choices otherwise."""
    try:
        return table[number]
    except KeyError:
        raise InvalidArgument(f"{field} must be one of {_names(enum, table)}, got {_name(enum, number)}", field=field) from None


def run_status_from_proto(field: str, number: int) -> RunStatus:
    return _enum_from_proto(field, number, pb.RunStatus, RUN_STATUS_FROM_PROTO)


def step_status_from_proto(field: str, number: int) -> StepStatus:
    return _enum_from_proto(field, number, pb.StepStatus, STEP_STATUS_FROM_PROTO)


def version_status_from_proto(field: str, number: int) -> VersionStatus:
    return _enum_from_proto(field, number, pb.WorkflowVersionStatus, VERSION_STATUS_FROM_PROTO)


def _name(enum: Any, number: int) -> str:
    try:
        return str(enum.Name(number))
    except ValueError:
        return str(number)


def _names(enum: Any, numbers: Mapping[Any, Any]) -> str:
    return ", ".join(enum.Name(n) for n in numbers)


# google.protobuf.Duration's own rules: about 10,000 years, and seconds and nanos of one sign.
_MAX_DURATION_SECONDS = 315_576_000_000


def duration_from_proto(field: str, message: Duration) -> timedelta:
    seconds, nanos = message.seconds, message.nanos
    if abs(seconds) > _MAX_DURATION_SECONDS or abs(nanos) >= 1_000_000_000 or (seconds * nanos < 0):
        raise InvalidArgument(f"{field} is not a valid duration (seconds={seconds}, nanos={nanos})", field=field)
    try:
        return message.ToTimedelta()
    except (ValueError, OverflowError) as err:
        raise InvalidArgument(f"{field} is not a valid duration: {err}", field=field) from None


def failure_from_proto(message: pb.Failure) -> FailureRecord:
    return FailureRecord(message=message.message, stack=message.stack, code=message.code)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def timestamp(value: datetime) -> Timestamp:
    # Plain arithmetic: Timestamp.FromDatetime is pure Python and several times slower, on a
    # path that builds up to six timestamps per response.
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


def _failure(error_json: str | None) -> pb.Failure | None:
    if error_json is None:
        return None
    error = json.loads(error_json)
    if not isinstance(error, dict):  # written by something other than this server
        return pb.Failure(message=str(error))
    return pb.Failure(message=str(error.get("message", "")), stack=str(error.get("stack", "")), code=str(error.get("code", "")))


def duration(value: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(value)
    return duration


def run_to_proto(row: RunRecord | RunSummary) -> pb.Run:
    return pb.Run(
        run_id=str(row["run_id"]),
        workflow=row["workflow"],
        status=RUN_STATUS_TO_PROTO[RunStatus(row["status"])],
        input_json=row["input"] or "",  # a page without payloads leaves it out: empty, as JSON null is
        output_json=row["output"],
        error=_failure(row["error"]),
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
        inline=row["inline"],
        graph_hash=row["graph_hash"] or "",
        metadata_json=row["metadata"],
        deterministic=row["deterministic"],
        planned_steps=[pb.PlannedStep(**step) for step in json.loads(row["planned_steps"])] if row["planned_steps"] else (),
        schedule_id=row["schedule_id"] or "",
        schedule_time=timestamp(row["schedule_time"]) if row["schedule_time"] is not None else None,
    )


def planned_steps_json(steps: Any) -> str | None:
    """The stored form of CreateRun's planned steps (checked already): a JSON array, None for none."""
    if not steps:
        return None
    return json.dumps([{"step_name": step.step_name, "display_name": step.display_name} for step in steps], separators=(",", ":"))


# The times of an attempt, kept for the step's current one and for each in the history.
_TIMES = ("scheduled_time", "running_time", "succeeded_time", "failed_time")


_OPTION_DURATIONS = ("retry_delay", "max_retry_delay", "start_to_close", "schedule_to_start")
_OPTION_NUMBERS = ("retries", "backoff_coefficient", "jitter", "priority")


def _set_columns(row: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Those of the row's columns `names` that are not NULL."""
    return {name: row[name] for name in names if row[name] is not None}


def options_to_proto(row: StepOptionColumns, concurrency_key: str | None = None) -> pb.StepOptions:
    """A step's or a dispatch defaults row's stored options, and a step's concurrency key (a default has none)."""
    fields: dict[str, Any] = {name: duration(value) for name, value in _set_columns(row, _OPTION_DURATIONS).items()}
    fields.update(_set_columns(row, _OPTION_NUMBERS))
    return pb.StepOptions(concurrency_key=concurrency_key or "", **fields)


def step_to_proto(row: StepRecord) -> pb.StepState:
    optional_times = {name: timestamp(value) for name, value in _set_columns(row, _TIMES).items()}
    return pb.StepState(
        step_id=str(row["step_id"]),
        run_id=str(row["run_id"]),
        step_name=row["step_name"],
        rpc_name=row["rpc_name"],
        data_json=row["data"],
        status=STEP_STATUS_TO_PROTO[StepStatus(row["status"])],
        result_json=row["result"],
        error=_failure(row["error"]),
        attempt_count=row["attempt_count"],
        retries=row["retries"],
        retry_delay=duration(row["retry_delay"]) if row["retry_delay"] is not None else None,
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
        not_before=timestamp(row["not_before"]) if row["not_before"] is not None else None,
        worker_id=row["worker_id"] or "",
        from_step_name=row["from_step_name"] or "",
        child_run_id=str(row["child_run_id"]) if row["child_run_id"] is not None else "",
        branch_key=row["branch_key"] or "",
        options=options_to_proto(row, row["concurrency_key"]),
        **optional_times,
    )


def attempt_to_proto(row: AttemptRow) -> pb.StepAttempt:
    optional_times = {name: timestamp(value) for name, value in _set_columns(row, _TIMES).items()}
    return pb.StepAttempt(
        step_id=str(row["step_id"]),
        step_name=row["step_name"],
        attempt=row["attempt"],
        status=STEP_STATUS_TO_PROTO[StepStatus(row["status"])],
        result_json=row["result"],
        error=_failure(row["error"]),
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
        **optional_times,
    )


def version_to_proto(row: VersionRow) -> pb.WorkflowVersion:
    return pb.WorkflowVersion(
        workflow=row["workflow"],
        graph_hash=row["graph_hash"],
        graph_json=row["graph"],
        source=row["source"],
        status=VERSION_STATUS_TO_PROTO[VersionStatus(row["status"])],
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
    )


def lease_to_proto(row: HeldLeaseRow) -> pb.LeaseInfo:
    return pb.LeaseInfo(
        key=row["key"],
        holder=row["holder"] or "",
        fencing_token=row["fencing_token"],
        acquire_time=timestamp(row["acquire_time"]),
        expire_time=timestamp(row["expire_time"]),
    )


def retention_policy_to_proto(row: PolicyRow) -> pb.RetentionPolicy:
    statuses = sorted(RUN_STATUS_TO_PROTO[RunStatus(status)] for status in row["statuses"])
    return pb.RetentionPolicy(
        policy_id=row["policy_id"],
        workflow=row["workflow"],
        statuses=statuses,
        keep=duration(row["keep"]),
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
    )


SCHEDULE_OVERLAP_TO_PROTO = {Overlap.SKIP: pb.SCHEDULE_OVERLAP_SKIP, Overlap.ALLOW: pb.SCHEDULE_OVERLAP_ALLOW}
SCHEDULE_CATCH_UP_TO_PROTO = {CatchUp.SKIP: pb.SCHEDULE_CATCH_UP_SKIP, CatchUp.LATEST: pb.SCHEDULE_CATCH_UP_LATEST}


def schedule_overlap_from_proto(field: str, number: int) -> Overlap:
    """UNSPECIFIED means SKIP."""
    if number == pb.SCHEDULE_OVERLAP_UNSPECIFIED:
        return Overlap.SKIP
    for overlap, value in SCHEDULE_OVERLAP_TO_PROTO.items():
        if value == number:
            return overlap
    raise InvalidArgument(f"{field} must be SCHEDULE_OVERLAP_SKIP or SCHEDULE_OVERLAP_ALLOW, got {number}", field=field)


def schedule_catch_up_from_proto(field: str, number: int) -> CatchUp:
    """UNSPECIFIED means SKIP."""
    if number == pb.SCHEDULE_CATCH_UP_UNSPECIFIED:
        return CatchUp.SKIP
    for catch_up, value in SCHEDULE_CATCH_UP_TO_PROTO.items():
        if value == number:
            return catch_up
    raise InvalidArgument(f"{field} must be SCHEDULE_CATCH_UP_SKIP or SCHEDULE_CATCH_UP_LATEST, got {number}", field=field)


def schedule_to_proto(row: ScheduleRow) -> pb.Schedule:
    """A schedule row of schedules.sql (with its latest run's columns)."""
    return pb.Schedule(
        schedule_id=row["schedule_id"],
        workflow=row["workflow"],
        cron=row["cron"] or "",
        interval=duration(row["interval"]) if row["interval"] is not None else None,
        timezone=row["timezone"],
        input_json=row["input"],
        overlap=SCHEDULE_OVERLAP_TO_PROTO[Overlap(row["overlap"])],
        catch_up=SCHEDULE_CATCH_UP_TO_PROTO[CatchUp(row["catch_up"])],
        paused=row["paused"],
        next_fire_time=timestamp(row["next_fire_time"]) if row["next_fire_time"] is not None else None,
        last_run_id=str(row["last_run_id"]) if row["last_run_id"] is not None else "",
        last_schedule_time=timestamp(row["last_schedule_time"]) if row["last_schedule_time"] is not None else None,
        last_run_status=RUN_STATUS_TO_PROTO[RunStatus(row["last_run_status"])] if row["last_run_status"] is not None else pb.RUN_STATUS_UNSPECIFIED,
        overlap_skips=row["overlap_skips"],
        create_time=timestamp(row["create_time"]),
        update_time=timestamp(row["update_time"]),
    )


def worker_to_proto(row: WorkerStreamRow) -> pb.WorkerInfo:
    return pb.WorkerInfo(
        worker_id=row["worker_id"],
        stream_id=str(row["stream_id"]),
        rpc_names=row["rpc_names"],
        max_in_flight=row["max_in_flight"],
        tasks_in_flight=row["tasks_in_flight"],
        task_lease=duration(row["task_lease"]),
        connect_time=timestamp(row["connect_time"]),
        heartbeat_time=timestamp(row["heartbeat_time"]),
        server_id=str(row["server_id"]),
        server_address=row["server_address"],
    )


def task_to_proto(row: ClaimedTaskRow) -> pb.StepTask:
    """A step claimed for a worker (a row of claim_tasks) as the task pushed to it."""
    return pb.StepTask(
        step_id=str(row["step_id"]),
        run_id=str(row["run_id"]),
        step_name=row["step_name"],
        rpc_name=row["rpc_name"],
        data_json=row["data"],
        attempt=row["attempt_count"],
        deadline=timestamp(row["task_expire_time"]),
        timeout_time=timestamp(row["task_timeout_time"]) if row["task_timeout_time"] is not None else None,
    )


def event_to_proto(row: EventRow) -> pb.RunEvent:
    event = pb.RunEvent(event_id=row["event_id"], run_id=str(row["run_id"]), workflow=row["workflow"], event_time=timestamp(row["event_time"]))
    if row["step_id"] is None:
        event.run_changed.status = RUN_STATUS_TO_PROTO[RunStatus(row["status"])]
    else:
        # A step's change always names its step and attempt (events.sql).
        assert row["step_name"] is not None and row["attempt"] is not None
        changed = event.step_changed
        changed.step_id = str(row["step_id"])
        changed.step_name = row["step_name"]
        changed.attempt = row["attempt"]
        changed.status = STEP_STATUS_TO_PROTO[StepStatus(row["status"])]
    return event


# google.protobuf.Timestamp's own range: 0001-01-01 to 9999-12-31.
_MIN_TIMESTAMP_SECONDS, _MAX_TIMESTAMP_SECONDS = -62_135_596_800, 253_402_300_799


def timestamp_from_proto(field: str, message: Timestamp) -> datetime:
    if not _MIN_TIMESTAMP_SECONDS <= message.seconds <= _MAX_TIMESTAMP_SECONDS or not 0 <= message.nanos < 1_000_000_000:
        raise InvalidArgument(f"{field} is not a valid timestamp (seconds={message.seconds}, nanos={message.nanos})", field=field)
    return message.ToDatetime(tzinfo=timezone.utc)
