"""Run events for readers: follow the events of one run or of many, from a position, for ever.

Each server runs one event pump while it has readers: every `interval` it asks the table which
runs have readable events past the pump's position (one indexed query, whatever the number of
readers) and wakes the readers of those runs, and the readers of every run. A woken reader reads
its own events from its own position. Readers also look again every `poll_interval` unwoken, so a
pump that cannot reach the database delays them and never stalls them. (Not NOTIFY: sending one
from every state change serialised the commits of all writers; see migration 0003.)

An event is readable once every older transaction has ended (see events/store.py), so the pump
never wakes a reader for an event it cannot read yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta

from ..core import errors
from ..core.supervisor import Supervisor
from ..db.database import Database, Row
from .store import EventStore, Position

log = logging.getLogger("workflowstate.server.events")

PAGE = 500


class EventWatchers:
    """The event readers of one server process, keyed by run (None: readers of every run)."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float,
        poll_interval: float,
        retention: timedelta | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.events = EventStore(database)
        self._supervisor = supervisor or Supervisor()
        self.interval = interval
        self.poll_interval = poll_interval
        self.retention = retention
        self._pruner: asyncio.Task[None] | None = None
        self._watchers: dict[uuid.UUID | None, set[asyncio.Event]] = {}
        self._someone_watches = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pump = self._supervisor.start("event-pump", self._pump_forever)
        retention = self.retention
        if retention is not None:
            self._pruner = self._supervisor.start("event-pruner", lambda: self._prune_forever(retention))

    async def stop(self) -> None:
        tasks = [task for task in (self._pump, self._pruner) if task]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _prune_forever(self, retention: timedelta) -> None:
        """Delete events past the retention, at a tenth of it (at most every minute)."""
        period = min(60.0, retention.total_seconds() / 10)
        while True:
            try:
                pruned = await self.events.prune(retention)
                if pruned:
                    log.info("pruned run events past their retention", extra={"events": pruned, "retention": str(retention)})
            except errors.WorkflowStateError as err:
                log.warning("could not prune run events", extra={"reason": str(err)})
            await asyncio.sleep(period)

    @contextlib.contextmanager
    def watching(self, run_id: uuid.UUID | None) -> Iterator[asyncio.Event]:
        """An event set whenever run_id (None: any run) may have new events."""
        wake = asyncio.Event()
        self._watchers.setdefault(run_id, set()).add(wake)
        self._someone_watches.set()
        try:
            yield wake
        finally:
            watchers = self._watchers[run_id]
            watchers.discard(wake)
            if not watchers:
                del self._watchers[run_id]
            if not self._watchers:
                self._someone_watches.clear()

    def shutdown(self) -> None:
        """End every reader's stream (with UNAVAILABLE): the server is stopping."""
        self._closing = True
        for watchers in self._watchers.values():
            for wake in watchers:
                wake.set()

    def _wake(self, run_ids: set[uuid.UUID]) -> None:
        for key in (*run_ids, None):
            for wake in self._watchers.get(key, ()):
                wake.set()

    async def _pump_forever(self) -> None:
        position: Position | None = None  # None: start again from the newest event
        while True:
            if not self._watchers:
                position = None
                await self._someone_watches.wait()
            try:
                if position is None:
                    # Readers read what is readable already themselves; the pump tells them of
                    # what becomes readable after they started waiting.
                    position = await self.events.newest()
                rows = await self.events.touched(position, PAGE)
            except errors.WorkflowStateError as err:
                log.warning("the event pump cannot read events; readers poll until it can", extra={"reason": str(err)})
                await asyncio.sleep(self.poll_interval)
                continue
            if rows:
                position = Position.after(rows[-1])
                self._wake({row["run_id"] for row in rows})
            if len(rows) < PAGE:
                await asyncio.sleep(self.interval)

    async def follow(
        self, read: Callable[[Position, int], Awaitable[list[Row]]], start: Position, wake: asyncio.Event
    ) -> AsyncIterator[Row]:
        """Every event after start, in order, waiting for new ones for ever."""
        position = start
        while True:
            if self._closing:
                raise errors.ShuttingDown("the server is shutting down; resume from the last event id on another server")
            wake.clear()  # before the read: a wake-up during it is not lost
            rows = await read(position, PAGE)
            for row in rows:
                yield row
                position = Position.after(row)
            if len(rows) < PAGE:
                await _wait(wake, self.poll_interval)


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait for event, at most timeout seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
            await event.wait()


__all__ = ["EventWatchers"]
