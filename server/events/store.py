"""The SQL side of run events: read them in their stable order, from a position.

Events are written by triggers (record_run_event) in the transaction of each change. A position is
(xact_id, event_id): events are read in that order, and only those of transactions older than
every transaction still running, so a reader never passes over an event that commits late.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from ..core import errors
from ..db.database import Database
from ..db.params import NO_INPUT, NoInput
from .inputs import START, AllEventsInput, EventIdInput, FollowInput, Position, PruneInput, RunEventsInput, TouchedInput
from .rows import AddedRow, EventPositionRow, EventRow, PositionColumns, PrunedRow, RemovedRow, RunEventsRow, TouchedEvent, TouchedRow

# The columns of an event row, as run_events_of_run returns them (one array each).
EVENT_COLUMNS = ("event_id", "xact_id", "run_id", "workflow", "step_id", "step_name", "attempt", "status", "event_time")


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
        sql = database.statements(__package__, "events.sql")
        self._of_run = sql.grouped("run_events_of_run", RunEventsInput, RunEventsRow)
        self._position = sql.query("run_event_position", EventIdInput, EventPositionRow)
        self._all = sql.query("run_events_all", AllEventsInput, EventRow)
        self._prune = sql.query("prune_run_events", PruneInput, PrunedRow)
        self._newest = sql.query("run_events_newest", NoInput, PositionColumns)
        self._touched = sql.query("run_events_touched", TouchedInput, TouchedRow)
        self._follow = sql.query("follow_runs", FollowInput, AddedRow)
        self._unfollow = sql.query("unfollow_runs", FollowInput, RemovedRow)
        self._forget_gone = sql.query("forget_gone_listeners", NoInput, RemovedRow)

    async def position_of(self, event_id: int, *, run_id: uuid.UUID | None = None) -> tuple[Position, EventPositionRow | None]:
        """The position just after event_id (0: the start) and that event's row; NotFound for an
        unknown event, or one of another run when run_id is given."""
        if event_id == 0:
            return START, None
        row = await self._position.one(EventIdInput(event_id))
        if row is None:
            raise errors.NotFound(f"event {event_id} not found")
        if run_id is not None and row["run_id"] != run_id:
            raise errors.NotFound(f"event {event_id} is not an event of run {run_id}")
        return Position(row["xact_id"], event_id), row

    async def of_run(self, run_id: uuid.UUID, after: Position, limit: int) -> list[EventRow]:
        """The next events of run_id after `after` (at most limit), in order; read in one statement with
        the reads of other runs made at the same moment."""
        row = await self._of_run.run(RunEventsInput(run_id, after, limit))
        assert row is not None  # a read leaves no input out
        arrays: Mapping[str, object] = row
        columns = [cast(list[object], arrays[column]) for column in EVENT_COLUMNS]
        return [cast(EventRow, dict(zip(EVENT_COLUMNS, values, strict=True))) for values in zip(*columns, strict=True)]

    async def of_all(self, workflow: str | None, after: Position, limit: int) -> list[EventRow]:
        return await self._all.all(AllEventsInput(workflow, after, limit))

    async def prune(self, retention: timedelta) -> int:
        """Delete events older than retention, in batches; return how many went."""
        pruned = 0
        while True:
            row = await self._prune.one(PruneInput(retention))
            count = row["pruned"] if row else 0
            pruned += count
            if count < 10_000:
                return pruned

    async def newest(self) -> Position:
        """The position of the newest readable event (the start when there is none)."""
        row = await self._newest.one(NO_INPUT)
        return Position.after(row) if row else START

    async def touched(self, after: Position, limit: int) -> tuple[Horizon, list[TouchedEvent]]:
        """The horizon of the statement's snapshot, and the run_id and position of each readable
        event after `after`, in order."""
        rows = await self._touched.all(TouchedInput(after, limit))
        horizon = Horizon(int(rows[0]["readable_below"]), int(rows[0]["next_xid"]))
        return horizon, [event for event in map(_touched_event, rows) if event is not None]

    async def follow_runs(self, listener_pid: int, run_ids: Collection[uuid.UUID]) -> None:
        """Have the events of these runs notified to the LISTEN connection with this backend pid."""
        await self._follow.one(FollowInput(listener_pid, list(run_ids)))

    async def unfollow_runs(self, listener_pid: int, run_ids: Collection[uuid.UUID]) -> None:
        await self._unfollow.one(FollowInput(listener_pid, list(run_ids)))

    async def forget_gone_listeners(self) -> None:
        """Delete the followed runs of LISTEN connections that are gone."""
        await self._forget_gone.one(NO_INPUT)


def _touched_event(row: TouchedRow) -> TouchedEvent | None:
    """The event of a run_events_touched row; None for the row that holds only the horizon."""
    if row["run_id"] is None or row["xact_id"] is None or row["event_id"] is None:
        return None
    return TouchedEvent(run_id=row["run_id"], xact_id=row["xact_id"], event_id=row["event_id"])


__all__ = ["START", "EventStore", "Horizon", "Position"]
