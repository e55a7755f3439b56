"""What wakes a waiting workflow: a change of its run, a time, or the end of its drive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from ._errors import Interrupted


class RunSignals:
    """The wake-ups of one drive of one run.

    ``notify`` is called for every event of the run (and of its children) the engine hears;
    ``stops`` are the events that end the drive (the engine drains, the lease is lost, and
    :meth:`run_finished`: the run was cancelled or finished by someone else). A waiter
    takes :attr:`changed` *before* it reads the state it waits on, so a change between the read
    and the wait is never missed.
    """

    def __init__(self, stops: Sequence[asyncio.Event]) -> None:
        self._finished = asyncio.Event()
        self._stops = (*stops, self._finished)
        self._changed = asyncio.Event()

    def run_finished(self) -> None:
        """The run ended outside this drive (cancelled, say): nothing more to wait for."""
        self._finished.set()
        self.notify()

    @property
    def changed(self) -> asyncio.Event:
        """Set by the next :meth:`notify`; take it before reading."""
        return self._changed

    def notify(self) -> None:
        """Wake every waiter: something of the run changed."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    @property
    def stopped(self) -> bool:
        return any(stop.is_set() for stop in self._stops)

    def check(self) -> None:
        """Raise Interrupted once the drive must stop."""
        if self.stopped:
            raise Interrupted()

    async def wait(self, seconds: float | None, changed: asyncio.Event | None = None) -> None:
        """Wait ``seconds`` (``None``: no limit), or until ``changed`` is set; raise Interrupted if the drive stops first."""
        self.check()
        waits = [asyncio.ensure_future(stop.wait()) for stop in self._stops]
        if changed is not None:
            waits.append(asyncio.ensure_future(changed.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        self.check()

    async def wait_until(self, deadline: float) -> None:
        """Wait until ``time.time()`` reaches ``deadline``, in waits the drive's stop can cut short."""
        while (left := deadline - time.time()) > 0:
            await self.wait(left)
