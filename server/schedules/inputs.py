"""The inputs of schedules.sql's statements: one frozen dataclass per statement, its fields the
statement's parameters (db/params.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ..db.params import named
from ..state.transitions import RUN_START, TERMINAL_RUN_STATUSES


@dataclass(frozen=True)
class CreateScheduleInput:
    """create_schedule: a schedule, first firing at next_fire_time, refused past max_schedules."""

    schedule_id: str
    workflow: str
    cron: str | None
    interval: timedelta | None
    timezone: str
    input_json: str = field(metadata=named("input"))
    overlap: str
    catch_up: str
    next_fire_time: datetime
    max_schedules: int


@dataclass(frozen=True)
class ScheduleIdInput:
    """get_schedule, pause_schedule, delete_schedule: one schedule by id."""

    schedule_id: str


@dataclass(frozen=True)
class ResumeScheduleInput:
    """resume_schedule: a paused schedule firing again from next_fire_time."""

    schedule_id: str
    next_fire_time: datetime


@dataclass(frozen=True)
class ListSchedulesInput:
    """list_schedules: up to limit schedules by id, past after_id."""

    after_id: str
    limit: int


@dataclass(frozen=True)
class DueSchedulesInput:
    """due_schedules: up to batch schedules whose next occurrence has come."""

    batch: int


@dataclass(frozen=True)
class FireInput:
    """fire_occurrence: the occurrence read as the schedule's next (`expected`) handled: the schedule
    moved on to next_fire_time, and the run of occurrence fire_time made (None: none)."""

    schedule_id: str
    expected: datetime
    next_fire_time: datetime
    fire_time: datetime | None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {
        "status": RUN_START.value,
        "finished": sorted(status.value for status in TERMINAL_RUN_STATUSES),
    }


__all__ = ["CreateScheduleInput", "DueSchedulesInput", "FireInput", "ListSchedulesInput", "ResumeScheduleInput", "ScheduleIdInput"]
