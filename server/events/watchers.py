"""Run events for readers: follow the events of one run or of many, from a position, for ever.

Each server runs one event pump while it has readers: every `interval` it asks the table which
runs have readable events past the pump's position (one indexed query, whatever the number of
readers) and wakes the readers of those runs, and the readers of every run. A woken reader reads
its own events from its own position. Readers also look again every `poll_interval` unwoken, so a
pump that cannot reach the database delays them and never stalls them. (Not NOTIFY: sending one
from every state change serialised the commits of all writers; see migration 0003.)

An event is readable once every older transaction has ended (see events/store.py), so the pump
never wakes a reader for an event it cannot read yet.

Changes made through this server do not wait for the pump: the stores hand the runs they changed to
`runs_changed` once their statement has committed, which wakes those runs' readers (and the readers
of every run) at once; a reader then has the event after one database round trip, unless a
transaction older than the change was still running at its commit, which keeps the event
unreadable until that transaction ends. For that case `runs_changed` also asks the pump for a
follow-up: the pump looks again, FOLLOW_UP after the change and then at doubling gaps (capped at
`interval`), until its snapshot shows every transaction that was running at the change's commit
ended (readable_below >= the next_xid of its first look after the change); the look that shows it
sees the event and wakes its readers. So a change through this server reaches its readers one round
trip after its commit, or, behind an older open transaction, within FOLLOW_UP plus the doubling gap
(at most `interval`) after that transaction ends; a change through another server within `interval`
plus a round trip after it is readable. Nothing is missed either way: every reader reads from its
own position, and the pump sees every event once, when it first becomes readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import timedelta

from ..core import errors
from ..core.supervisor import Supervisor
from ..db.database import Database, Row
from .store import EventStore, Position

log = logging.getLogger("workflowstate.server.events")

PAGE = 500
# How soon the pump looks again after a change made through this server (and the least gap
# between its looks while changes keep coming): one look per FOLLOW_UP at most, however many changes.
FOLLOW_UP = 0.005


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
        self._follow_up = asyncio.Event()  # set by runs_changed: the pump should look again soon
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

    def runs_changed(self, run_ids: Iterable[uuid.UUID]) -> None:
        """A statement that changed these runs committed through this server: wake their readers
        now, and have the pump follow up for an event not yet readable (see the module's comment)."""
        if not self._watchers:
            return
        self._wake(set(run_ids))
        self._follow_up.set()

    def _wake(self, run_ids: set[uuid.UUID]) -> None:
        for key in (*run_ids, None):
            for wake in self._watchers.get(key, ()):
                wake.set()

    async def _pump_forever(self) -> None:
        position: Position | None = None  # None: start again from the newest event
        # While not None, the pump looks again soon: a change through this server committed before
        # a transaction older than this xid ended, so its event may not have been readable yet.
        pending_below: int | None = None
        gap = FOLLOW_UP
        while True:
            if not self._watchers:
                position, pending_below = None, None
                await self._someone_watches.wait()
            # Cleared before the look: the look's snapshot is then taken after the commit of every
            # change that asked for it, so its next_xid is above their transactions.
            followed_up = self._follow_up.is_set()
            self._follow_up.clear()
            try:
                if position is None:
                    # Readers read what is readable already themselves; the pump tells them of
                    # what becomes readable after they started waiting.
                    position = await self.events.newest()
                horizon, rows = await self.events.touched(position, PAGE)
            except errors.WorkflowStateError as err:
                log.warning("the event pump cannot read events; readers poll until it can", extra={"reason": str(err)})
                if followed_up:
                    self._follow_up.set()
                await asyncio.sleep(self.poll_interval)
                continue
            if followed_up:
                pending_below = max(pending_below or 0, horizon.next_xid)
            if pending_below is not None and horizon.readable_below >= pending_below:
                pending_below = None  # every change asked about is readable: this look saw its events
            if rows:
                position = Position.after(rows[-1])
                self._wake({row["run_id"] for row in rows})
            if len(rows) >= PAGE:
                continue
            if pending_below is not None:
                await asyncio.sleep(gap)
                gap = min(gap * 2, self.interval)
                continue
            gap = FOLLOW_UP
            await _wait(self._follow_up, self.interval)
            if self._follow_up.is_set():
                await asyncio.sleep(FOLLOW_UP)  # one look for a burst of changes

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
