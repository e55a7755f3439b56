"""Run events for readers: follow the events of one run or of many, from a position, for ever.

A server reads each followed run's new events once for all its WatchRun readers of that run (a
run's feed, events/feeds.py); a StreamRunEvents reader reads its own events. Readers (a feed, or a
StreamRunEvents reader) are woken three ways, and also look again every `poll_interval` unwoken:

- NOTIFY: the run-event trigger notifies each new event of a run some server follows for WatchRun
  (the table of followed runs, kept by events/listeners.py), in the transaction that writes it, so
  a change through any server wakes this server's feed of the run once it commits. A feed woken
  before the event is readable (a transaction older than the change still running) is woken again
  by the pump once it is. After the LISTEN connection comes back, every feed reads once, since
  notifications may have been missed; the pump covers the time it is down. StreamRunEvents readers
  (of every run) are not followed so: they would make every write of every run send a NOTIFY,
  which serialises commits (see the migration of the table of followed runs).
- In-process: the stores hand the runs they changed to `runs_changed` once their statement has
  committed, which wakes those runs' readers (and the readers of every run) at once.
- The event pump, the fallback: while the server has readers, every `interval` it asks the table
  which runs have readable events past the pump's position (one indexed query, whatever the number
  of readers) and wakes the readers of those runs, and the readers of every run.

An event is readable once every older transaction has ended (see events/store.py), so a wake-up
can come before its event is readable: a change through this server committed while a transaction
older than it still ran. For that case `runs_changed` also asks the pump for a follow-up: the pump
looks again, FOLLOW_UP after the change and then at doubling gaps (capped at `interval`), until its
snapshot shows every transaction that was running at the change's commit ended (readable_below >=
the next_xid of its first look after the change); the look that shows it sees the event and wakes
its readers. So a change reaches its readers one round trip after its commit, or, behind an older
open transaction, within FOLLOW_UP plus the doubling gap (at most `interval`) after that
transaction ends (through another server: within `interval`). Nothing is missed either way: every
reader reads from its own position, and the pump sees every event once, when it first becomes
readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import timedelta

from ..core import errors
from ..core.supervisor import Supervisor
from ..db.database import Database
from ..db.notifications import Notifications, run_events_channel
from . import feeds
from .feeds import PAGE, ReadEvents, RunFeed
from .listeners import FollowedRuns
from .store import EventStore, Position
from .rows import EventRow

log = logging.getLogger("workflowstate.server.events")

# How soon the pump looks again after a change made through this server (and the least gap
# between its looks while changes keep coming): one look per FOLLOW_UP at most, however many changes.
FOLLOW_UP = 0.005


class EventWatchers:
    """The event readers of one server process: the feeds of followed runs, and the readers of every run."""

    def __init__(
        self,
        database: Database,
        *,
        interval: float,
        poll_interval: float,
        retention: timedelta | None = None,
        supervisor: Supervisor | None = None,
        notifications: Notifications | None = None,
        on_read: Callable[[str], None] = lambda reader: None,
        on_fell_behind: Callable[[], None] = lambda: None,
    ) -> None:
        self.events = EventStore(database)
        self._on_read = on_read
        self._on_fell_behind = on_fell_behind
        self._feeds: dict[uuid.UUID, tuple[RunFeed, asyncio.Task[None]]] = {}
        self._followed: FollowedRuns | None = None
        if notifications is not None:
            self._followed = FollowedRuns(
                self.events, lambda: notifications.backend_pid, self._wake, retry_interval=poll_interval
            )
            notifications.subscribe(run_events_channel(database.schema), self._run_event_notice, self._listener_reconnected)
        self._followed_task: asyncio.Task[None] | None = None
        self._supervisor = supervisor or Supervisor()
        # Feeds come and go with their runs' watchers: supervised (a failure is logged and the feed
        # restarted), but not one by one in the server's metrics of background tasks, by name.
        self._feed_supervisor = Supervisor(self._supervisor.policy)
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
        if self._followed is not None:
            self._followed_task = self._supervisor.start("followed-runs", self._followed.keep_in_line)
        retention = self.retention
        if retention is not None:
            self._pruner = self._supervisor.start("event-pruner", lambda: self._prune_forever(retention))

    async def stop(self) -> None:
        tasks = [task for task in (self._pump, self._pruner, self._followed_task) if task]
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
            self._someone_watches_update()

    async def watch_run(self, run_id: uuid.UUID, start: Position) -> AsyncGenerator[EventRow, None]:
        """Every event of run_id after start, in order, each once, for ever; read for all the run's
        watchers on this server at once (see events/feeds.py)."""
        def of_run(after: Position, limit: int) -> Awaitable[list[EventRow]]:
            return self.events.of_run(run_id, after, limit)

        entry = self._feeds.get(run_id)
        if entry is None:
            feed = RunFeed(self._reader(of_run, "feed"), poll_interval=self.poll_interval)
            entry = self._feeds[run_id] = (feed, self._feed_supervisor.start(f"event-feed-{run_id}", feed.run))
            if self._followed is not None:
                self._followed.want(run_id)
            self._someone_watches.set()
        feed, task = entry
        watching = feeds.watch(feed, self._reader(of_run, "watcher"), start, lambda: self._closing, self._on_fell_behind)
        try:
            async with contextlib.aclosing(watching) as rows:
                async for row in rows:
                    yield row
        finally:
            if not feed.queues and self._feeds.get(run_id) is entry:
                del self._feeds[run_id]
                task.cancel()
                if self._followed is not None:
                    self._followed.drop(run_id)
                self._someone_watches_update()

    def _reader(self, read: ReadEvents, reader: str) -> ReadEvents:
        """read, counted in the event-read metric under reader."""

        async def counted(after: Position, limit: int) -> list[EventRow]:
            self._on_read(reader)
            return await read(after, limit)

        return counted

    def _someone_watches_update(self) -> None:
        if self._watchers or self._feeds:
            self._someone_watches.set()
        else:
            self._someone_watches.clear()

    def shutdown(self) -> None:
        """End every reader's stream (with UNAVAILABLE): the server is stopping."""
        self._closing = True
        for watchers in self._watchers.values():
            for wake in watchers:
                wake.set()
        for feed, _ in self._feeds.values():
            feeds.wake_all(feed.queues)

    def runs_changed(self, run_ids: Iterable[uuid.UUID]) -> None:
        """A statement that changed these runs committed through this server: wake their readers
        now, and have the pump follow up for an event not yet readable (see the module's comment)."""
        if not self._watchers and not self._feeds:
            return
        self._wake(set(run_ids))
        self._follow_up.set()

    def _run_event_notice(self, payload: str) -> None:
        """A NOTIFY of the run-event trigger: the run has events of the transaction, committed."""
        try:
            run, xact = payload.split(" ")
            run_id, xact_id = uuid.UUID(run), int(xact)
        except ValueError:
            log.warning("a run-event notification without a run id and a transaction id", extra={"payload": payload})
            return
        self._wake_for({run_id: xact_id})

    def _listener_reconnected(self) -> None:
        """The LISTEN connection is (back) up: notifications may have been missed, so every reader
        reads once, and the followed runs are written again under the new connection."""
        if self._followed is not None:
            self._followed.listener_changed()
        self._wake(set(self._feeds))

    def _wake(self, run_ids: set[uuid.UUID]) -> None:
        for run_id in run_ids:
            entry = self._feeds.get(run_id)
            if entry is not None:
                entry[0].wake()
        self._wake_streams(run_ids)

    def _wake_for(self, newest_xact: dict[uuid.UUID, int]) -> None:
        """Wake the readers of these runs, which have events of transactions up to these ones."""
        for run_id, xact_id in newest_xact.items():
            entry = self._feeds.get(run_id)
            if entry is not None:
                entry[0].wake_for(xact_id)
        self._wake_streams(newest_xact)

    def _wake_streams(self, run_ids: Iterable[uuid.UUID]) -> None:
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
            if not self._watchers and not self._feeds:
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
                self._wake_for({row["run_id"]: int(row["xact_id"]) for row in rows})  # in order: the newest of each run
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
        self, read: Callable[[Position, int], Awaitable[list[EventRow]]], start: Position, wake: asyncio.Event
    ) -> AsyncIterator[EventRow]:
        """Every event after start, in order, waiting for new ones for ever."""
        position = start
        while True:
            if self._closing:
                raise errors.ShuttingDown("the server is shutting down; resume from the last event id on another server")
            wake.clear()  # before the read: a wake-up during it is not lost
            self._on_read("stream")
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
