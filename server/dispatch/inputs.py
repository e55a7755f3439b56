"""The inputs of dispatch.sql's and defaults.sql's statements run once per call (fail_tasks, the
set-based one, is fail_input.py; a worker stream's rows are written from workers.py's): one frozen dataclass per statement, its fields the statement's
parameters (db/params.py), its CONSTANTS the statuses that come from the transition table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from ..db.params import spread
from ..state.options import DispatchOptions
from ..state.transitions import Via, held_by_worker, only_target, open_run_statuses, step_sources

_CLAIMED = only_target(Via.CLAIM)
_START_TIMED_OUT = only_target(Via.START_TIMEOUT)
# Where a claim takes a step from, and the runs whose steps may be claimed.
_CLAIM = {"from_statuses": step_sources(_CLAIMED, Via.CLAIM), "open_run_statuses": open_run_statuses()}
# The status of an attempt a worker holds.
_HELD = {"held_status": held_by_worker().value}


@dataclass(frozen=True)
class ClaimTasksInput:
    """claim_tasks: up to limit due steps of these rpc names handed to one worker's stream."""

    rpc_names: list[str]
    limit: int
    worker_id: str
    stream_id: uuid.UUID
    task_lease: timedelta

    CONSTANTS: ClassVar[Mapping[str, Any]] = {**_CLAIM, "to_status": _CLAIMED.value}


@dataclass(frozen=True)
class NextDueInput:
    """next_task_due: when the next scheduled step of these rpc names falls due."""

    rpc_names: list[str]

    CONSTANTS: ClassVar[Mapping[str, Any]] = _CLAIM


@dataclass(frozen=True)
class AdoptTasksInput:
    """adopt_tasks: attempts (step_ids[i] at attempts[i]) a reconnected worker takes back on this stream."""

    step_ids: list[uuid.UUID]
    attempts: list[int]
    worker_id: str
    stream_id: uuid.UUID
    task_lease: timedelta
    credential: str | None

    CONSTANTS: ClassVar[Mapping[str, Any]] = _HELD


@dataclass(frozen=True)
class FinishedRunsInput:
    """finished_runs: which of these runs are finished."""

    run_ids: list[uuid.UUID]

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": open_run_statuses()}


@dataclass(frozen=True)
class ExpiredTasksInput:
    """expired_tasks: the handed-out attempts whose task lease passed (nothing but the statuses)."""

    CONSTANTS: ClassVar[Mapping[str, Any]] = {**_HELD, "open_run_statuses": open_run_statuses()}


@dataclass(frozen=True)
class StartTimeoutsInput:
    """start_timeouts: the scheduled attempts nobody claimed in time (nothing but the statuses)."""

    CONSTANTS: ClassVar[Mapping[str, Any]] = {
        "from_statuses": step_sources(_START_TIMED_OUT, Via.START_TIMEOUT),
        "open_run_statuses": open_run_statuses(),
    }


@dataclass(frozen=True)
class StreamIdInput:
    """worker_disconnected: one stream's row."""

    stream_id: uuid.UUID


@dataclass(frozen=True)
class SetDefaultsInput:
    """set_defaults: one rpc name's defaults, created or replaced."""

    rpc_name: str
    options: DispatchOptions = field(metadata=spread("opt_"))
    concurrency_limit: int | None = None
    rate_limit: int | None = None
    rate_period: timedelta | None = None


@dataclass(frozen=True)
class RpcNameInput:
    """delete_defaults: one rpc name's defaults."""

    rpc_name: str


__all__ = [
    "AdoptTasksInput",
    "ClaimTasksInput",
    "ExpiredTasksInput",
    "FinishedRunsInput",
    "NextDueInput",
    "RpcNameInput",
    "SetDefaultsInput",
    "StartTimeoutsInput",
    "StreamIdInput",
]
