"""Leases on keys: acquire with a first-come first-served wait, keep alive, release.

The database decides who holds a key (see leases/store.py); this module decides when a stream
tries. Each waiting stream has a ticket in the database queue and a place in this server's local
queue of its key. Only the local head of a key tries again, and only when woken: by a release on
any server (LISTEN/NOTIFY), by the head before it leaving, or by a bounded timer. The timer covers
what sends no notification: a holder that expired, or a server that died while holding.

The rows kept for a stream (its lease, its place in the queue) live exactly as long as the stream:
the refresh extends the places of the waiters still waiting (by ticket), and a release or clean-up
the database could not take is retried (core/cleanups.py) until done or until the row expired.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..core import errors
from ..core.cleanups import RetriedCleanups
from ..core.shutdown import ShutdownNotifier
from ..core.supervisor import Supervisor
from ..db.notifications import Notifications
from .rows import HeldLeaseRow
from .store import LeaseStore

log = logging.getLogger("workflowstate.server.leases")


@dataclass
class Grant:
    """A lease one stream holds."""

    key: str
    owner_id: uuid.UUID
    fencing_token: int
    ttl: timedelta
    expire_time: datetime
    # When this server considers the lease expired, on the event loop's clock. It is measured
    # from before the statement that set expire_time was sent, so it never falls after the
    # database's own expiry: a holder hears it lost the lease before anyone else can get it.
    deadline: float


class LeaseGone(Exception):
    """A keepalive found the lease no longer held."""

    def __init__(self, taken_over: bool) -> None:
        super().__init__("taken over" if taken_over else "expired")
        self.taken_over = taken_over


class _Waiter:
    __slots__ = ("owner_id", "ticket", "wake")

    def __init__(self, owner_id: uuid.UUID) -> None:
        self.owner_id = owner_id
        # Place in the database queue; None until the first try has queued it.
        self.ticket: int | None = None
        self.wake = asyncio.Event()


def _placed_ticket(waiter: _Waiter) -> int:
    """The ticket of a waiter in a key's queue: place() gives it one before queueing it."""
    assert waiter.ticket is not None
    return waiter.ticket


class _KeyQueue:
    """This server's waiters of one key, in database ticket order.

    The head (lowest ticket) is the only one that retries; waiters still in their first try have
    no ticket yet and are woken by every release too, so a release during that try is not missed.
    """

    def __init__(self) -> None:
        self.queued: list[_Waiter] = []
        self.first_trying: set[_Waiter] = set()

    def head(self) -> _Waiter | None:
        return self.queued[0] if self.queued else None

    def place(self, waiter: _Waiter, ticket: int) -> None:
        self.first_trying.discard(waiter)
        waiter.ticket = ticket
        self.queued.insert(bisect.bisect(self.queued, ticket, key=_placed_ticket), waiter)

    def remove(self, waiter: _Waiter) -> None:
        self.first_trying.discard(waiter)
        was_head = self.head() is waiter
        if waiter in self.queued:
            self.queued.remove(waiter)
        if was_head:
            self.wake()

    def wake(self) -> None:
        head = self.head()
        if head:
            head.wake.set()
        for waiter in self.first_trying:
            waiter.wake.set()

    def __bool__(self) -> bool:
        return bool(self.queued or self.first_trying)


@dataclass(frozen=True)
class LeaseSettings:
    """How leases behave on this server."""

    # The longest ttl a client may ask for.
    max_ttl: timedelta = timedelta(minutes=5)
    # The longest a waiting head sleeps before it looks again without being woken.
    poll_interval: float = 1.0
    # How long a waiter keeps its place in the queue once its server stops refreshing it.
    waiter_ttl: timedelta = timedelta(seconds=10)

    @property
    def cleanup_retry_interval(self) -> float:
        """How often a clean-up that failed (the database away) is tried again: the poll interval,
        so a key is free again within two of them after an outage (README, Leases and fencing)."""
        return self.poll_interval


class LeaseManager(ShutdownNotifier):
    """All lease streams of one server process."""

    def __init__(
        self, leases: LeaseStore, settings: LeaseSettings, notifications: Notifications, *, supervisor: Supervisor | None = None
    ) -> None:
        super().__init__()
        self._supervisor = supervisor or Supervisor()
        self._leases = leases
        notifications.subscribe(leases.channel, self._wake_key, self._wake_all)
        self.settings = settings
        self._queues: dict[str, _KeyQueue] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.cleanups = RetriedCleanups(
            "lease-cleanup", retry_interval=settings.cleanup_retry_interval, supervisor=self._supervisor, log=log
        )

    async def start(self) -> None:
        self._tasks = [self._supervisor.start("lease-waiter-refresh", self._refresh_waiters)]
        self.cleanups.start()

    async def stop(self, timeout: float = 5.0) -> None:
        for task in self._tasks:
            task.cancel()
        self.cleanups.cancel()
        pending = [*self._tasks, *self.cleanups.tasks()]
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=timeout)
            if stuck:
                log.warning("lease tasks did not finish in time; stopping without them", extra={"tasks": len(stuck)})

    # Acquire, keep alive, release.

    async def acquire(self, key: str, ttl: timedelta, holder: str, wait_timeout: timedelta | None) -> Grant:
        """Wait for the lease on key, first come first served. wait_timeout 0 tries once, None
        waits for ever; DeadlineExceeded when it passes."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(uuid.uuid4())
        queue = self._queues.setdefault(key, _KeyQueue())
        queue.first_trying.add(waiter)
        try_once = wait_timeout is not None and wait_timeout <= timedelta(0)
        grant: Grant | None = None
        interrupted = False
        try:
            # A single try runs to its end: a zero timeout would cancel the statement itself.
            async with asyncio.timeout(None if wait_timeout is None or try_once else wait_timeout.total_seconds()):
                while True:
                    pause: float | None = None
                    if waiter.ticket is None or queue.head() is waiter:
                        # Cleared before the statement: a release during it still wakes us.
                        waiter.wake.clear()
                        sent_at = loop.time()
                        attempt = await self._leases.try_acquire(
                            key, waiter.owner_id, holder, ttl, ticket=waiter.ticket, enqueue=not try_once and waiter.ticket is None
                        )
                        if attempt.granted:
                            assert attempt.fencing_token is not None and attempt.expire_time is not None
                            grant = Grant(key, waiter.owner_id, attempt.fencing_token, ttl, attempt.expire_time, sent_at + ttl.total_seconds())
                            return grant
                        if try_once:
                            raise errors.DeadlineExceeded(f"lease {key!r} is held by another holder (tried once)")
                        if waiter.ticket is None:
                            assert attempt.ticket is not None
                            queue.place(waiter, attempt.ticket)
                        pause = self._pause_before_retry(attempt.expire_time)
                    else:
                        # Not our turn: sleep until the waiter before us leaves. (Checked and
                        # cleared with no await between, so that wake-up cannot be lost.)
                        waiter.wake.clear()
                    await self._sleep(waiter.wake, pause)
        except TimeoutError:
            raise errors.DeadlineExceeded(f"lease {key!r} was not free within the wait_timeout of {wait_timeout}") from None
        except asyncio.CancelledError:
            interrupted = True
            raise
        finally:
            queue.remove(waiter)
            if not queue:
                del self._queues[key]
            if grant is None and (interrupted or not try_once):
                # Leave the database queue (and free a lease an interrupted statement may have
                # granted) even when this task is being cancelled, and even when the database is
                # away now: retried until done, or until both rows expired anyway.
                self._abandon(key, waiter.owner_id, ttl)

    async def keep_alive(self, grant: Grant) -> None:
        """Extend the lease by its ttl; LeaseGone when it was lost."""
        sent_at = asyncio.get_running_loop().time()
        expire_time, current_token = await self._leases.keep_alive(grant.key, grant.owner_id, grant.fencing_token, grant.ttl)
        if expire_time is None:
            raise LeaseGone(taken_over=current_token != grant.fencing_token)
        grant.expire_time = expire_time
        grant.deadline = sent_at + grant.ttl.total_seconds()

    async def release(self, grant: Grant) -> None:
        """Free the lease. When the database is away this raises, and the release is also retried
        in the background: the stream that held it is about to end with that error, and its key
        must be free as soon as the database is back, not only at the ttl."""
        try:
            await self._release_and_wake(grant)
        except errors.WorkflowStateError as err:
            work = functools.partial(self._release_and_wake, grant)
            self.cleanups.later(("release", grant.owner_id), "lease release", work, moot_after=self._moot_after(grant), reason=str(err))
            raise

    async def release_quietly(self, grant: Grant) -> None:
        """Release, logging instead of raising when the database is away (retried until done)."""
        await asyncio.wait([self.release_in_background(grant)])

    def release_in_background(self, grant: Grant) -> asyncio.Task[None]:
        """Release a stream's lease when the stream is gone (its task may be cancelled); retried
        until done or until the lease expired anyway."""
        work = functools.partial(self._release_and_wake, grant)
        return self.cleanups.run(("release", grant.owner_id), "lease release", work, moot_after=self._moot_after(grant))

    async def _release_and_wake(self, grant: Grant) -> None:
        await self._leases.release(grant.key, grant.owner_id, grant.fencing_token)
        self._wake_key(grant.key)

    def _moot_after(self, grant: Grant) -> float:
        # The lease is free in the database at its expiry; the margin covers the distance between
        # this server's deadline and the database's clock.
        left = grant.deadline - asyncio.get_running_loop().time()
        return max(left, 0.0) + self.settings.waiter_ttl.total_seconds()

    def _abandon(self, key: str, owner_id: uuid.UUID, ttl: timedelta) -> None:
        """Leave the queue and free what an interrupted try may have got. Its waiter row expires
        waiter_ttl after its last refresh, a lease the try may have been granted at its ttl; past
        both (and a margin of waiter_ttl for statements that were in flight) it no longer matters."""
        moot_after = max(ttl, self.settings.waiter_ttl).total_seconds() + self.settings.waiter_ttl.total_seconds()
        work = functools.partial(self._leases.abandon, key, owner_id)
        self.cleanups.run(("abandon", owner_id), "lease clean-up", work, moot_after=moot_after)

    async def get(self, key: str) -> HeldLeaseRow | None:
        return await self._leases.get(key)

    async def held(self, prefix: str | None, after_key: str | None, limit: int) -> list[HeldLeaseRow]:
        """A page of the leases held now, by key (see LeaseStore.held)."""
        return await self._leases.held(prefix, after_key, limit)

    # Waking and waiting.

    def _wake_key(self, key: str) -> None:
        queue = self._queues.get(key)
        if queue:
            queue.wake()

    def _wake_all(self) -> None:
        for queue in self._queues.values():
            queue.wake()

    def _pause_before_retry(self, holder_expire_time: datetime | None) -> float:
        """Until the holder's expiry (a few ms after), at most the poll interval.

        No expiry, or one already past, means an earlier waiter has the key's turn: its grant
        sends nothing, its release will wake us, and the poll covers a waiter that died.
        """
        if holder_expire_time is None:
            return self.settings.poll_interval
        left = (holder_expire_time - datetime.now(timezone.utc)).total_seconds()
        if left <= 0:
            return self.settings.poll_interval
        return min(self.settings.poll_interval, left + 0.005)

    @staticmethod
    async def _sleep(wake: asyncio.Event, timeout: float | None) -> None:
        if timeout is None:
            await wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
                await wake.wait()

    def waiting_tickets(self) -> list[int]:
        """The database tickets of the waiters still waiting on this server: only their rows are
        kept alive. (A waiter that gave up left the local queue first, so its row, should its
        clean-up fail, expires at its own waiter_ttl and stops holding up the key.)"""
        return [waiter.ticket for queue in self._queues.values() for waiter in queue.queued if waiter.ticket is not None]

    async def _refresh_waiters(self) -> None:
        """Keep the places in the database queue of the waiters still waiting here alive."""
        interval = self.settings.waiter_ttl.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            tickets = self.waiting_tickets()
            if not tickets:
                continue
            try:
                await self._leases.refresh_waiters(tickets)
            except errors.WorkflowStateError as err:
                log.warning("could not refresh lease waiters", extra={"reason": str(err)})
