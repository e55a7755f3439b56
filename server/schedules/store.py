"""Schedules in the database (schedules.sql), so every server fires the same ones.

Occurrences are computed here (timing.py) from the database's clock; the statements store them
and decide, each in one statement, who handles an occurrence.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core import errors
from ..db.database import Database, Row
from ..state.transitions import RUN_START, TERMINAL_RUN_STATUSES
from .timing import CatchUp, Decision, Overlap, Timing


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
    def of(cls, row: Row) -> Due:
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
        self._sql = database.statements(__package__, "schedules.sql")

    async def _now(self) -> datetime:
        row = await self._sql.fetch_one("database_now", {})
        assert row is not None
        now: datetime = row["now"]
        return now

    async def create(self, spec: ScheduleSpec, *, max_schedules: int) -> Row:
        """Create the schedule, first firing at its first occurrence after now; return it.
        The same request again returns the schedule as it is; another one with its id is AlreadyExists.
        LimitReached when the schema holds `max_schedules` schedules already."""
        params = {
            "schedule_id": spec.schedule_id,
            "workflow": spec.workflow,
            "cron": spec.timing.cron,
            "interval": spec.timing.interval,
            "timezone": spec.timing.timezone,
            "input": spec.input_json,
            "overlap": spec.overlap.value,
            "catch_up": spec.catch_up.value,
            "next_fire_time": spec.timing.after(await self._now()),
            "max_schedules": max_schedules,
        }
        row = await self._sql.fetch_one("create_schedule", params)
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

    async def get(self, schedule_id: str) -> Row:
        row = await self._sql.fetch_one("get_schedule", {"schedule_id": schedule_id})
        if row is None:
            raise errors.NotFound(f"schedule {schedule_id!r} not found")
        return row

    async def list(self, after_id: str, limit: int) -> list[Row]:
        return await self._sql.fetch_all("list_schedules", {"after_id": after_id, "limit": limit})

    async def pause(self, schedule_id: str) -> Row:
        await self._changed("pause_schedule", {"schedule_id": schedule_id}, schedule_id)
        return await self.get(schedule_id)

    async def resume(self, schedule_id: str) -> Row:
        """Resume from the first occurrence after now (of the schedule as stored)."""
        current = await self.get(schedule_id)
        timing = Timing(current["cron"], current["interval"], current["timezone"])
        params = {"schedule_id": schedule_id, "next_fire_time": timing.after(await self._now())}
        await self._changed("resume_schedule", params, schedule_id)
        return await self.get(schedule_id)

    async def delete(self, schedule_id: str) -> None:
        await self._changed("delete_schedule", {"schedule_id": schedule_id}, schedule_id)

    async def _changed(self, query: str, params: dict[str, Any], schedule_id: str) -> None:
        if await self._sql.fetch_one(query, params) is None:
            raise errors.NotFound(f"schedule {schedule_id!r} not found")

    # The loop's statements.

    # builtins.list: inside this class `list` is the method above.
    async def due(self, batch: int) -> builtins.list[Due]:
        return [Due.of(row) for row in await self._sql.fetch_all("due_schedules", {"batch": batch})]

    async def seconds_to_next_due(self) -> float | None:
        """Seconds until the soonest schedule is due by the database's clock (None: none is)."""
        row = await self._sql.fetch_one("next_due_time", {})
        if row is None or row["next_fire_time"] is None:
            return None
        wait: timedelta = row["next_fire_time"] - row["now"]
        return max(wait.total_seconds(), 0.0)

    async def fire(self, due: Due, decision: Decision) -> Fired | None:
        """Handle the occurrence `due` read; None when another server did (or it was paused or deleted)."""
        params = {
            "schedule_id": due.schedule_id,
            "expected": due.next_fire_time,
            "next_fire_time": decision.next_fire_time,
            "fire_time": decision.fire_time,
            "status": RUN_START.value,
            "finished": sorted(status.value for status in TERMINAL_RUN_STATUSES),
        }
        row = await self._sql.fetch_one("fire_occurrence", params)
        return None if row is None else Fired(row["run_id"], row["overlapped"], row["duplicate"])


__all__ = ["Due", "Fired", "ScheduleSpec", "ScheduleStore"]
