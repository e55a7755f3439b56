"""The rows of events.sql's statements, one TypedDict per shape. xact_id is an xid8 as text."""

# No `from __future__ import annotations`: TypedDict keys are read from evaluated annotations (state/rows.py says why).
import uuid
from datetime import datetime
from typing import TypedDict


class PositionColumns(TypedDict):
    """Where an event sorts in the order events are read."""

    xact_id: str
    event_id: int


class EventRow(PositionColumns):
    """run_events_all (and each event of run_events_of_run): one run event, with its run's workflow.
    A run's own change has step_id, step_name and attempt None."""

    run_id: uuid.UUID
    workflow: str
    step_id: uuid.UUID | None
    step_name: str | None
    attempt: int | None
    status: str
    event_time: datetime


class RunEventsRow(TypedDict):
    """run_events_of_run: one input's events, as one array per column in their order (empty: none)."""

    ordinal: int
    event_id: list[int]
    xact_id: list[str]
    run_id: list[uuid.UUID]
    workflow: list[str]
    step_id: list[uuid.UUID | None]
    step_name: list[str | None]
    attempt: list[int | None]
    status: list[str]
    event_time: list[datetime]


class EventPositionRow(TypedDict):
    """run_event_position: an event's run, what it says and where it sorts."""

    run_id: uuid.UUID
    step_id: uuid.UUID | None
    status: str
    xact_id: str


class TouchedRow(TypedDict):
    """run_events_touched: the statement's snapshot horizon (xids as text), and one readable event's run
    and position (all three None in the one row there is when no event is)."""

    readable_below: str
    next_xid: str
    run_id: uuid.UUID | None
    xact_id: str | None
    event_id: int | None


class TouchedEvent(PositionColumns):
    """A readable event of run_events_touched: its run and position."""

    run_id: uuid.UUID


class PrunedRow(TypedDict):
    """prune_run_events: how many events went."""

    pruned: int


class AddedRow(TypedDict):
    """follow_runs: how many runs were not followed already."""

    added: int


class RemovedRow(TypedDict):
    """unfollow_runs, forget_gone_listeners: how many followed runs went."""

    removed: int


__all__ = ["AddedRow", "EventPositionRow", "EventRow", "PositionColumns", "PrunedRow", "RemovedRow", "RunEventsRow", "TouchedEvent", "TouchedRow"]
