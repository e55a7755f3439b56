"""The rows of schedules.sql's statements, one TypedDict per shape."""

# No `from __future__ import annotations`: TypedDict keys are read from evaluated annotations (state/rows.py says why).
import uuid
from datetime import datetime, timedelta
from typing import TypedDict


class ScheduleRecord(TypedDict):
    """A row of table schedules (interval and cron: exactly one set)."""

    schedule_id: str
    workflow: str
    cron: str | None
    interval: timedelta | None
    timezone: str
    input: str
    overlap: str
    catch_up: str
    paused: bool
    next_fire_time: datetime | None
    overlap_skips: int
    create_time: datetime
    update_time: datetime


class ScheduleRow(ScheduleRecord):
    """get_schedule, list_schedules: a schedule and its latest run (None when it made none)."""

    last_run_id: uuid.UUID | None
    last_schedule_time: datetime | None
    last_run_status: str | None


class CreatedScheduleRow(ScheduleRecord):
    """create_schedule: the schedule created (changed) or found (same as asked, or another: exists)."""

    outcome: str


class NowRow(TypedDict):
    """database_now: the database's clock."""

    now: datetime


class ScheduleIdRow(TypedDict):
    """pause_schedule, resume_schedule, delete_schedule: the schedule changed (no row: unknown id)."""

    schedule_id: str


class DueRow(TypedDict):
    """due_schedules: a schedule whose next occurrence has come, and the database's clock."""

    schedule_id: str
    cron: str | None
    interval: timedelta | None
    timezone: str
    catch_up: str
    next_fire_time: datetime
    now: datetime


class NextDueTimeRow(TypedDict):
    """next_due_time: the soonest next occurrence (None: none), and the database's clock."""

    next_fire_time: datetime | None
    now: datetime


class FiredRow(TypedDict):
    """fire_occurrence: the run made (None: none), whether overlap skipped it, and whether the
    occurrence had its run already."""

    run_id: uuid.UUID | None
    overlapped: bool
    duplicate: bool


__all__ = ["CreatedScheduleRow", "DueRow", "FiredRow", "NextDueTimeRow", "NowRow", "ScheduleIdRow", "ScheduleRecord", "ScheduleRow"]
