"""The SQL side of run events: read them in their stable order, from a position.

Events are written by triggers (record_run_event) in the transaction of each change. A position is
(xact_id, event_id): events are read in that order, and only those of transactions older than
every transaction still running, so a reader never passes over an event that commits late.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from ..core import errors
from ..db.database import Database, Row


@dataclass(frozen=True)
class Position:
    """Where a reader is in the order of events: after this one."""

    xact_id: str = "0"
    event_id: int = 0

    @classmethod
    def after(cls, row: Row) -> Position:
        return cls(row["xact_id"], row["event_id"])

    def sort_key(self) -> tuple[int, int]:
        """The position in the order events are read (xact_id is an xid8 as text)."""
        return int(self.xact_id), self.event_id


START = Position()

# The columns of an event row, as run_events_of_run returns them (one array each).
EVENT_COLUMNS = ("event_id", "xact_id", "run_id", "workflow", "step_id", "step_name", "attempt", "status", "event_time")


@dataclass(frozen=True, eq=False)
class RunEventsInput:
    """run_events_of_run: one run's next events after a position. A read locks nothing: each is its own key."""

    run_id: uuid.UUID
    after: Position
    limit: int

    # Its bytes in a group's bound: ids and numbers only.
    SIZE: ClassVar[int] = 64

    @staticmethod
    def params(inputs: Sequence[RunEventsInput]) -> dict[str, Any]:
        return {
            "run_id": [item.run_id for item in inputs],
            "after_xact": [item.after.xact_id for item in inputs],
            "after_event_id": [item.after.event_id for item in inputs],
            "limit": [item.limit for item in inputs],
        }


@dataclass(frozen=True)
class Horizon:
    """What one statement's snapshot says of transactions (xids as integers)."""

    readable_below: int
    """Events of transactions older than this are readable."""

    next_xid: int
    """Every transaction that had committed when the statement began is older than this."""


class EventStore:
    """Run-event reads of events.sql."""

    def __init__(self, database: Database) -> None:
        self._sql = database.statements(__package__, "events.sql")
        self._of_run = self._sql.grouped(
            "run_events_of_run", params=RunEventsInput.params, key=lambda item: item, size=lambda item: RunEventsInput.SIZE
        )

    async def position_of(self, event_id: int, *, run_id: uuid.UUID | None = None) -> tuple[Position, Row | None]:
        """The position just after event_id (0: the start) and that event's row; NotFound for an
        unknown event, or one of another run when run_id is given."""
        if event_id == 0:
            return START, None
        row = await self._sql.fetch_one("run_event_position", {"event_id": event_id})
        if row is None:
            raise errors.NotFound(f"event {event_id} not found")
        if run_id is not None and row["run_id"] != run_id:
            raise errors.NotFound(f"event {event_id} is not an event of run {run_id}")
        return Position(row["xact_id"], event_id), row

    async def of_run(self, run_id: uuid.UUID, after: Position, limit: int) -> list[Row]:
        """The next events of run_id after `after` (at most limit), in order; read in one statement with
        the reads of other runs made at the same moment."""
        row = await self._of_run.run(RunEventsInput(run_id, after, limit))
        assert row is not None  # a read leaves no input out
        return [dict(zip(EVENT_COLUMNS, values, strict=True)) for values in zip(*(row[column] for column in EVENT_COLUMNS), strict=True)]

    async def of_all(self, workflow: str | None, after: Position, limit: int) -> list[Row]:
        return await self._sql.fetch_all(
            "run_events_all", {"workflow": workflow, "after_xact": after.xact_id, "after_event_id": after.event_id, "limit": limit}
        )

    async def prune(self, retention: timedelta) -> int:
        """Delete events older than retention, in batches; return how many went."""
        pruned = 0
        while True:
            row = await self._sql.fetch_one("prune_run_events", {"retention": retention})
            count = row["pruned"] if row else 0
            pruned += count
            if count < 10_000:
                return pruned

    async def newest(self) -> Position:
        """The position of the newest readable event (the start when there is none)."""
        row = await self._sql.fetch_one("run_events_newest", {})
        return Position.after(row) if row else START

    async def touched(self, after: Position, limit: int) -> tuple[Horizon, list[Row]]:
        """The horizon of the statement's snapshot, and the run_id and position of each readable
        event after `after`, in order."""
        rows = await self._sql.fetch_all(
            "run_events_touched", {"after_xact": after.xact_id, "after_event_id": after.event_id, "limit": limit}
        )
        horizon = Horizon(int(rows[0]["readable_below"]), int(rows[0]["next_xid"]))
        return horizon, [row for row in rows if row["event_id"] is not None]

    async def follow_runs(self, listener_pid: int, run_ids: Collection[uuid.UUID]) -> None:
        """Have the events of these runs notified to the LISTEN connection with this backend pid."""
        await self._sql.fetch_one("follow_runs", {"listener_pid": listener_pid, "run_ids": list(run_ids)})

    async def unfollow_runs(self, listener_pid: int, run_ids: Collection[uuid.UUID]) -> None:
        await self._sql.fetch_one("unfollow_runs", {"listener_pid": listener_pid, "run_ids": list(run_ids)})

    async def forget_gone_listeners(self) -> None:
        """Delete the followed runs of LISTEN connections that are gone."""
        await self._sql.fetch_one("forget_gone_listeners", {})


__all__ = ["START", "EventStore", "Horizon", "Position"]
