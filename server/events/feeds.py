"""One reader per followed run and server: it reads the run's new events once and hands them to every
watcher of the run on this server, each through a bounded queue.

A watcher subscribes to the run's feed first, then reads on its own from its resume position until
it has read every readable event (a read shorter than a page), and only then takes the feed's
batches, skipping what it has already. Nothing falls between the two: the events readable at a
moment are a prefix of the reading order (events of transactions older than every one still
running), so any batch the feed read before the watcher subscribed holds events the watcher's own
read saw, and every batch read after it is in the watcher's queue. The first watcher to finish its
own read gives the feed its starting position, so the feed never reads what a watcher just read.

A watcher's queue holds at most MAX_QUEUED events: a watcher whose client reads slower than its run
changes gets, instead of more, one FELL_BEHIND mark and goes back to reading on its own from its
last event (the same path as its start), so a slow reader costs its own reads, never the server's
memory or the other watchers' time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ..core import errors
from .store import Position
from .rows import EventRow

PAGE = 500
# Events one watcher may have waiting in its queue before it is dropped back to reading on its own.
MAX_QUEUED = 2 * PAGE

ReadEvents = Callable[[Position, int], Awaitable[list[EventRow]]]


@dataclass(frozen=True)
class Batch:
    """Events the feed read, in order, after `after`."""

    after: Position
    rows: list[EventRow]


@dataclass(frozen=True)
class ReadFailed:
    """The feed's read raised: its watchers end with the same error."""

    error: errors.WorkflowStateError


class _FellBehind:
    """The watcher's queue overflowed: what it missed must be read on its own."""


FELL_BEHIND: Final = _FellBehind()


class WatcherQueue:
    """What the feed has for one watcher, bounded by MAX_QUEUED events."""

    def __init__(self) -> None:
        self._items: collections.deque[Batch | ReadFailed | _FellBehind] = collections.deque()
        self._queued = 0
        self.ready = asyncio.Event()

    def offer(self, item: Batch | ReadFailed) -> None:
        size = len(item.rows) if isinstance(item, Batch) else 0
        if self._queued + size > MAX_QUEUED:
            self._items.clear()
            self._items.append(FELL_BEHIND)
            self._queued = 0
        else:
            self._items.append(item)
            self._queued += size
        self.ready.set()

    def take(self) -> list[Batch | ReadFailed | _FellBehind]:
        items = list(self._items)
        self._items.clear()
        self._queued = 0
        self.ready.clear()
        return items


class RunFeed:
    """The one reader of a run's new events on this server, while the run has watchers here."""

    def __init__(self, read: ReadEvents, *, poll_interval: float) -> None:
        self._read = read
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()
        # Whether the feed was woken without knowing by which transaction (set by wake(), not by
        # wake_for()), and the newest transaction it was woken for: after a read that passed that
        # transaction, a wake-up of it alone asks for nothing new.
        self._woken_blind = False
        self._woken_for = 0
        self.queues: set[WatcherQueue] = set()
        self._position: Position | None = None
        self._positioned = asyncio.Event()

    def wake(self) -> None:
        """The run may have new events (a change through this server, a reconnect): read again."""
        self._woken_blind = True
        self._wake.set()

    def wake_for(self, xact_id: int) -> None:
        """The run has events of transaction xact_id (a NOTIFY, the pump): read again unless the feed
        has read past that transaction already. A change through this server is often read before
        its NOTIFY arrives."""
        if self._position is not None and int(self._position.xact_id) >= xact_id:
            return
        self._woken_for = max(self._woken_for, xact_id)
        self._wake.set()

    def caught_up_at(self, position: Position) -> None:
        """A watcher has read every readable event up to position: the feed starts there, if it has not started."""
        if self._position is None:
            self._position = position
            self._positioned.set()

    async def run(self) -> None:
        """Read the run's new events whenever woken (and every poll_interval), for ever."""
        await self._positioned.wait()
        while True:
            position = self._position
            assert position is not None
            self._wake.clear()  # before the read: a wake-up during it is not lost
            self._woken_blind, self._woken_for = False, 0
            try:
                rows = await self._read(position, PAGE)
            except errors.WorkflowStateError as err:
                self._publish(ReadFailed(err))
                await _wait(self._wake, self._poll_interval)
                continue
            read_to = Position.after(rows[-1]) if rows else position
            if rows:
                self._position = read_to
                self._publish(Batch(position, rows))
            if len(rows) >= PAGE:
                continue
            if not self._woken_blind and int(read_to.xact_id) >= self._woken_for:
                self._wake.clear()  # woken during the read for transactions it has read
            await _wait(self._wake, self._poll_interval)

    def _publish(self, item: Batch | ReadFailed) -> None:
        for queue in self.queues:
            queue.offer(item)


async def watch(
    feed: RunFeed, read: ReadEvents, start: Position, closing: Callable[[], bool], on_fell_behind: Callable[[], None]
) -> AsyncGenerator[EventRow, None]:
    """Every event of the feed's run after start, in order, each once, for ever (see the module's comment)."""
    queue = WatcherQueue()
    feed.queues.add(queue)
    try:
        position = start
        reading_alone = True
        while True:
            if closing():
                raise errors.ShuttingDown("the server is shutting down; resume from the last event id on another server")
            if reading_alone:
                rows = await read(position, PAGE)
                for row in rows:
                    yield row
                    position = Position.after(row)
                if len(rows) < PAGE:
                    reading_alone = False
                    feed.caught_up_at(position)
                continue
            await queue.ready.wait()
            for item in queue.take():
                if isinstance(item, ReadFailed):
                    raise item.error
                if isinstance(item, _FellBehind):
                    on_fell_behind()
                    reading_alone = True
                    break
                if item.after.sort_key() > position.sort_key():
                    reading_alone = True  # a batch past a gap: never, by the prefix argument above
                    break
                for row in item.rows:
                    after = Position.after(row)
                    if after.sort_key() > position.sort_key():
                        yield row
                        position = after
    finally:
        feed.queues.discard(queue)


def wake_all(queues: set[WatcherQueue]) -> None:
    """Wake every watcher (the server is stopping: each sees it and ends)."""
    for queue in queues:
        queue.ready.set()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait for event, at most timeout seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
            await event.wait()


__all__ = ["FELL_BEHIND", "MAX_QUEUED", "PAGE", "Batch", "ReadFailed", "RunFeed", "WatcherQueue", "watch"]
