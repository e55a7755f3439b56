"""A WatchRun stream's queue of a run's feed (server/events/feeds.py): bounded in events, and past
the bound it holds only the mark that sends its watcher back to reading on its own."""

from __future__ import annotations

from workflowstate.server.events.feeds import FELL_BEHIND, MAX_QUEUED, Batch, WatcherQueue
from workflowstate.server.events.store import Position


def batch(size: int, after: int = 0) -> Batch:
    return Batch(Position("1", after), [{"event_id": after + n + 1, "xact_id": "1"} for n in range(size)])


def test_batches_within_the_bound_are_kept_in_order() -> None:
    queue = WatcherQueue()
    first, second = batch(MAX_QUEUED // 2), batch(MAX_QUEUED // 2, after=MAX_QUEUED // 2)
    queue.offer(first)
    queue.offer(second)
    assert queue.ready.is_set()
    assert queue.take() == [first, second]
    assert not queue.ready.is_set()


def test_past_the_bound_the_queue_drops_its_events_for_one_mark() -> None:
    queue = WatcherQueue()
    queue.offer(batch(MAX_QUEUED))
    queue.offer(batch(1, after=MAX_QUEUED))
    assert queue.take() == [FELL_BEHIND]
    # After the mark, room again: what comes next is kept (its watcher skips what it read on its own).
    later = batch(1, after=MAX_QUEUED + 1)
    queue.offer(batch(MAX_QUEUED))
    queue.offer(batch(1))
    queue.offer(later)
    assert queue.take() == [FELL_BEHIND, later]
