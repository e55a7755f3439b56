"""Positions in the order of run events, and the inputs of events.sql's statements: one frozen
dataclass per statement, its fields the statement's parameters (db/params.py)."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar

from ..db.params import spread
from .rows import PositionColumns


@dataclass(frozen=True)
class Position:
    """Where a reader is in the order of events: after this one."""

    xact_id: str = "0"
    event_id: int = 0

    @classmethod
    def after(cls, row: PositionColumns) -> Position:
        return cls(row["xact_id"], row["event_id"])

    def sort_key(self) -> tuple[int, int]:
        """The position in the order events are read (xact_id is an xid8 as text)."""
        return int(self.xact_id), self.event_id


START = Position()


@dataclass(frozen=True, eq=False)
class RunEventsInput:
    """run_events_of_run: one run's next events after a position. A read locks nothing: each is its own key."""

    run_id: uuid.UUID
    after: Position = field(metadata=spread("after_"))
    limit: int

    # Its bytes in a group's bound: ids and numbers only.
    SIZE: ClassVar[int] = 64

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return self.SIZE


@dataclass(frozen=True)
class EventIdInput:
    """run_event_position: one event by id."""

    event_id: int


@dataclass(frozen=True)
class AllEventsInput:
    """run_events_all: the next events of every run (or every run of workflow) after a position."""

    workflow: str | None
    after: Position = field(metadata=spread("after_"))
    limit: int


@dataclass(frozen=True)
class TouchedInput:
    """run_events_touched: the runs and positions of the readable events after a position."""

    after: Position = field(metadata=spread("after_"))
    limit: int


@dataclass(frozen=True)
class PruneInput:
    """prune_run_events: a batch of the events older than retention."""

    retention: timedelta


@dataclass(frozen=True)
class FollowInput:
    """follow_runs, unfollow_runs: these runs' events for the LISTEN connection with this backend pid."""

    listener_pid: int
    run_ids: list[uuid.UUID]


__all__ = ["START", "AllEventsInput", "EventIdInput", "FollowInput", "Position", "PruneInput", "RunEventsInput", "TouchedInput"]
