"""Clean-ups that must not be lost to a database outage: tried at once, then again until done.

When a stream ends, the server undoes what it kept in the database for it (a lease waiter's place,
a lease, a worker stream's row). That statement can fail: the database is away just then. Logging
the failure and leaving the row to expire at its ttl lets the row outlive its owner by the whole
ttl, and a row something else keeps alive never expires. So a failed clean-up is kept here and
tried again every `retry_interval` by one supervised loop, until it succeeds or no longer matters
(`moot_at`: the row expired in the database anyway, so it blocks nothing any more).

A clean-up must be safe to run again: each names its row by owner (and fencing token), never
by "whatever this server has".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from . import errors
from .supervisor import Supervisor

CleanupWork = Callable[[], Awaitable[object]]


@dataclass
class _Pending:
    what: str
    work: CleanupWork
    # When, on the event loop's clock, the row it removes has expired anyway.
    moot_at: float


class RetriedCleanups:
    """One capability's clean-ups: the first try in a task of its own, the retries in one loop."""

    def __init__(self, name: str, *, retry_interval: float, supervisor: Supervisor, log: logging.Logger) -> None:
        self.name = name
        self.retry_interval = retry_interval
        self._supervisor = supervisor
        self._log = log
        # Keyed by what they clean up: a second failure of the same clean-up replaces the first.
        self._pending: dict[Hashable, _Pending] = {}
        self._first_tries: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop_task = self._supervisor.start(self.name, self._retry_forever)

    def tasks(self) -> list[asyncio.Task[None]]:
        """What a stop must wait for (after cancelling the retry loop with cancel())."""
        return [task for task in (self._loop_task, *self._first_tries) if task]

    def cancel(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()

    def pending(self) -> int:
        """How many clean-ups failed and wait for their next try."""
        return len(self._pending)

    def run(self, identity: Hashable, what: str, work: CleanupWork, *, moot_after: float) -> asyncio.Task[None]:
        """Try work() now, in a task of its own (the caller may be cancelled); if it fails, again
        every retry_interval until it succeeds or moot_after seconds from now have passed."""
        pending = _Pending(what, work, asyncio.get_running_loop().time() + moot_after)
        task = asyncio.create_task(self._first_try(identity, pending))
        self._first_tries.add(task)
        task.add_done_callback(self._first_tries.discard)
        return task

    def later(self, identity: Hashable, what: str, work: CleanupWork, *, moot_after: float, reason: str) -> None:
        """A clean-up whose try just failed (for `reason`): tried again from the next round of retries."""
        self._keep(identity, _Pending(what, work, asyncio.get_running_loop().time() + moot_after), reason)

    async def _first_try(self, identity: Hashable, pending: _Pending) -> None:
        try:
            await pending.work()
        except errors.WorkflowStateError as err:
            self._keep(identity, pending, str(err))

    def _keep(self, identity: Hashable, pending: _Pending, reason: str) -> None:
        self._pending[identity] = pending
        self._log.warning(
            f"{pending.what} failed; retrying it every {self.retry_interval:g}s until it succeeds or its row expires",
            extra={"reason": reason},
        )

    async def _retry_forever(self) -> None:
        while True:
            await asyncio.sleep(self.retry_interval)
            if self._pending:
                await self.retry_pending()

    async def retry_pending(self) -> None:
        """Try every pending clean-up once (those that no longer matter are dropped)."""
        now = asyncio.get_running_loop().time()
        for identity, pending in list(self._pending.items()):
            if now >= pending.moot_at:
                self._drop(identity, pending)
                self._log.info(f"{pending.what} no longer needed: its row expired", extra={"task": self.name})
                continue
            try:
                await pending.work()
            except errors.WorkflowStateError:
                continue  # said once already; the next round tries again
            self._drop(identity, pending)
            self._log.info(f"{pending.what} done after a retry", extra={"task": self.name})

    def _drop(self, identity: Hashable, pending: _Pending) -> None:
        # Only this very clean-up: a newer failure of the same identity stays.
        if self._pending.get(identity) is pending:
            del self._pending[identity]


__all__ = ["CleanupWork", "RetriedCleanups"]
