"""The rows of dispatch.sql's reads and of defaults.sql, one TypedDict per shape (the state changes'
rows, claim_tasks' and fail_tasks', are state/rows.py's, beside the other step moves)."""

# No `from __future__ import annotations`: TypedDict keys are read from evaluated annotations (state/rows.py says why).
import uuid
from datetime import datetime, timedelta
from typing import TypedDict

from ..state.rows import StepOptionColumns


class NextDueRow(TypedDict):
    """next_task_due: when the next scheduled step falls due (None: none in the future)."""

    due: datetime | None


class AdoptedTaskRow(TypedDict):
    """adopt_tasks: an attempt found running, whether it was adopted (outcome) and who held it."""

    outcome: str
    step_id: uuid.UUID
    attempt_count: int
    run_id: uuid.UUID
    holder: str | None


class ExpiredTaskRow(TypedDict):
    """expired_tasks: an attempt whose task lease passed, and whether it ran its start_to_close out."""

    step_id: uuid.UUID
    attempt_count: int
    start_to_close: timedelta | None
    timed_out: bool


class StartTimeoutRow(TypedDict):
    """start_timeouts: a scheduled attempt nobody claimed within its schedule_to_start."""

    step_id: uuid.UUID
    attempt_count: int
    schedule_to_start: timedelta | None


class StreamIdRow(TypedDict):
    """worker_connected, worker_disconnected, sweep_workers: the stream whose row was written or deleted."""

    stream_id: uuid.UUID


class HeartbeatRow(TypedDict):
    """worker_heartbeat: how many attempts' task leases were moved."""

    extended: int


class WorkerStreamRow(TypedDict):
    """list_workers: a row of table worker_streams."""

    stream_id: uuid.UUID
    worker_id: str
    rpc_names: list[str]
    max_in_flight: int
    tasks_in_flight: int
    task_lease: timedelta
    server_id: uuid.UUID
    server_address: str
    connect_time: datetime
    heartbeat_time: datetime
    credential: str | None


class DispatchDefaultsRow(StepOptionColumns):
    """set_defaults, list_defaults: a row of table dispatch_defaults."""

    rpc_name: str
    concurrency_limit: int | None
    rate_limit: int | None
    rate_period: timedelta | None
    update_time: datetime


class RpcNameRow(TypedDict):
    """delete_defaults: the rpc name whose defaults were removed."""

    rpc_name: str


__all__ = [
    "AdoptedTaskRow",
    "DispatchDefaultsRow",
    "ExpiredTaskRow",
    "HeartbeatRow",
    "NextDueRow",
    "RpcNameRow",
    "StartTimeoutRow",
    "StreamIdRow",
    "WorkerStreamRow",
]
