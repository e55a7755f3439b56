"""Schedules in the database (schedules.sql), so every server fires the same ones.

Occurrences are computed here (timing.py) from the database's clock; the statements store them
and decide, each in one statement, who handles an occurrence.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from ..core import errors
from ..db.database import Database, Query
from ..db.params import NO_INPUT, NoInput
from .inputs import CreateScheduleInput, DueSchedulesInput, FireInput, ListSchedulesInput, ResumeScheduleInput, ScheduleIdInput
from .rows import CreatedScheduleRow, DueRow, FiredRow, NextDueTimeRow, NowRow, ScheduleIdRow, ScheduleRow
from .timing import CatchUp, Decision, Overlap, Timing

In = TypeVar("In")


@dataclass(frozen=True)
class ScheduleSpec:
    """What CreateSchedule asks for, checked."""

    schedule_id: str
    workflow: str
    timing: Timing
    input_json: str
    overlap: Overlap
    catch_up: CatchUp


@dataclass(frozen=True)
class Due:
    """A schedule whose next occurrence has come, as the loop read it."""

    schedule_id: str
    timing: Timing
    catch_up: CatchUp
    next_fire_time: datetime
    now: datetime

    @classmethod
    def of(cls, row: DueRow) -> Due:
        timing = Timing(row["cron"], row["interval"], row["timezone"])
        return cls(row["schedule_id"], timing, CatchUp(row["catch_up"]), row["next_fire_time"], row["now"])


@dataclass(frozen=True)
class Fired:
    """What handling an occurrence did: the run it made (None: none), whether overlap skipped it,
    and whether the occurrence had a run already (see fire_occurrence)."""

    run_id: uuid.UUID | None
    overlapped: bool
    duplicate: bool


class ScheduleStore:
    """The statements of schedules.sql."""

    def __init__(self, database: Database) -> None:
        sql = database.statements(__package__, "schedules.sql")
        self._database_now = sql.query("database_now", NoInput, NowRow)
        self._create = sql.query("create_schedule", CreateScheduleInput, CreatedScheduleRow)
        self._get = sql.query("get_schedule", ScheduleIdInput, ScheduleRow)
        self._list = sql.query("list_schedules", ListSchedulesInput, ScheduleRow)
        self._pause = sql.query("pause_schedule", ScheduleIdInput, ScheduleIdRow)
        self._resume = sql.query("resume_schedule", ResumeScheduleInput, ScheduleIdRow)
        self._delete = sql.query("delete_schedule", ScheduleIdInput, ScheduleIdRow)
        self._due = sql.query("due_schedules", DueSchedulesInput, DueRow)
        self._next_due_time = sql.query("next_due_time", NoInput, NextDueTimeRow)
        self._fire = sql.query("fire_occurrence", FireInput, FiredRow)

    async def _now(self) -> datetime:
        row = await self._database_now.one(NO_INPUT)
        assert row is not None  # SELECT now() has its row
        return row["now"]

    async def create(self, spec: ScheduleSpec, *, max_schedules: int) -> ScheduleRow:
        """Create the schedule, first firing at its first occurrence after now; return it.
        The same request again returns the schedule as it is; another one with its id is AlreadyExists.
        LimitReached when the schema holds `max_schedules` schedules already."""
        item = CreateScheduleInput(
            schedule_id=spec.schedule_id,
            workflow=spec.workflow,
            cron=spec.timing.cron,
            interval=spec.timing.interval,
            timezone=spec.timing.timezone,
            input_json=spec.input_json,
            overlap=spec.overlap.value,
            catch_up=spec.catch_up.value,
            next_fire_time=spec.timing.after(await self._now()),
            max_schedules=max_schedules,
        )
        row = await self._create.one(item)
        if row is None:
            raise errors.LimitReached(
                f"the schema holds {max_schedules} schedules already, the most this server allows (--max-schedules {max_schedules}); "
                "delete one before creating another"
            )
        if row["outcome"] == "exists":
            raise errors.AlreadyExists(
                f"schedule {spec.schedule_id!r} exists with other settings; delete it first to change them"
            )
        return await self.get(spec.schedule_id)

    async def get(self, schedule_id: str) -> ScheduleRow:
        row = await self._get.one(ScheduleIdInput(schedule_id))
        if row is None:
            raise errors.NotFound(f"schedule {schedule_id!r} not found")
        return row

    async def list(self, after_id: str, limit: int) -> list[ScheduleRow]:
        return await self._list.all(ListSchedulesInput(after_id, limit))

    async def pause(self, schedule_id: str) -> ScheduleRow:
        await self._changed(self._pause, ScheduleIdInput(schedule_id), schedule_id)
        return await self.get(schedule_id)

    async def resume(self, schedule_id: str) -> ScheduleRow:
        """Resume from the first occurrence after now (of the schedule as stored)."""
        current = await self.get(schedule_id)
        timing = Timing(current["cron"], current["interval"], current["timezone"])
        await self._changed(self._resume, ResumeScheduleInput(schedule_id, timing.after(await self._now())), schedule_id)
        return await self.get(schedule_id)

    async def delete(self, schedule_id: str) -> None:
        await self._changed(self._delete, ScheduleIdInput(schedule_id), schedule_id)

    @staticmethod
    async def _changed(query: Query[In, ScheduleIdRow], item: In, schedule_id: str) -> None:
        if await query.one(item) is None:
            raise errors.NotFound(f"schedule {schedule_id!r} not found")

    # The loop's statements.

    async def due(self, batch: int) -> builtins.list[Due]:  # `list` is a method of this class
        return [Due.of(row) for row in await self._due.all(DueSchedulesInput(batch))]

    async def seconds_to_next_due(self) -> float | None:
        """Seconds until the soonest schedule is due by the database's clock (None: none is)."""
        row = await self._next_due_time.one(NO_INPUT)
        if row is None or row["next_fire_time"] is None:
            return None
        wait: timedelta = row["next_fire_time"] - row["now"]
        return max(wait.total_seconds(), 0.0)

    async def fire(self, due: Due, decision: Decision) -> Fired | None:
        """Handle the occurrence `due` read; None when another server did (or it was paused or deleted)."""
        row = await self._fire.one(FireInput(due.schedule_id, due.next_fire_time, decision.next_fire_time, decision.fire_time))
        return None if row is None else Fired(row["run_id"], row["overlapped"], row["duplicate"])


__all__ = ["Due", "Fired", "ScheduleSpec", "ScheduleStore"]
