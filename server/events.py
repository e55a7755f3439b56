"""Run events for readers: follow the events of one run or of many, from a position, for ever.

Readers wait for a NOTIFY naming their run (sent by the trigger that writes each event, on any
server) or for the poll interval, then read what is new. An event is readable once every older
transaction has ended (see event_store.py), which is usually at once; a reader woken by a NOTIFY
that finds nothing yet looks again after a short, growing pause instead of a whole interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from . import errors
from .event_store import EventStore, Position
from .notifications import Notifications, events_channel
from .store import Row, Store

PAGE = 500
# The first pause of a reader woken for an event it could not read yet, doubled each time.
FIRST_RETRY = 0.002


class EventWatchers:
    """The event readers of one server process, keyed by run (None: readers of every run)."""

    def __init__(self, store: Store, notifications: Notifications, *, poll_interval: float) -> None:
        self.events = EventStore(store)
        self.poll_interval = poll_interval
        self._watchers: dict[uuid.UUID | None, set[asyncio.Event]] = {}
        self._closing = False
        notifications.subscribe(events_channel(store.schema), self._on_notice, self._wake_all)

    @contextlib.contextmanager
    def watching(self, run_id: uuid.UUID | None) -> Iterator[asyncio.Event]:
        """An event set whenever run_id (None: any run) may have new events."""
        wake = asyncio.Event()
        self._watchers.setdefault(run_id, set()).add(wake)
        try:
            yield wake
        finally:
            watchers = self._watchers[run_id]
            watchers.discard(wake)
            if not watchers:
                del self._watchers[run_id]

    def _on_notice(self, payload: str) -> None:
        try:
            run_id = uuid.UUID(payload)
        except ValueError:
            return
        for key in (run_id, None):
            for wake in self._watchers.get(key, ()):
                wake.set()

    def shutdown(self) -> None:
        """End every reader's stream (with UNAVAILABLE): the server is stopping."""
        self._closing = True
        self._wake_all()

    def _wake_all(self) -> None:
        for watchers in self._watchers.values():
            for wake in watchers:
                wake.set()

    async def follow(
        self, read: Callable[[Position, int], Awaitable[list[Row]]], start: Position, wake: asyncio.Event
    ) -> AsyncIterator[Row]:
        """Every event after start, in order, waiting for new ones for ever."""
        position = start
        retry: float | None = None  # set while a notice promised events not readable yet
        while True:
            if self._closing:
                raise errors.ShuttingDown("the server is shutting down; resume from the last event id on another server")
            wake.clear()  # before the read: a notice during it wakes the next wait
            rows = await read(position, PAGE)
            for row in rows:
                yield row
                position = Position.after(row)
            if len(rows) == PAGE:
                continue
            if rows:
                retry = None
            pause = self.poll_interval if retry is None else retry
            woken = await _wait(wake, pause)
            if woken:
                retry = FIRST_RETRY
            elif retry is not None:
                retry = min(retry * 2, self.poll_interval)
                if retry >= self.poll_interval:
                    retry = None


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    """Wait for event, at most timeout seconds; whether it was set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
            await event.wait()
            return True
    return False


__all__ = ["EventWatchers"]
