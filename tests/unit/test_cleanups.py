"""Retried clean-ups (server/core/cleanups.py): a clean-up the database refused is tried again
until it succeeds, and dropped, untried, once its row has expired anyway. Driven round by round
(retry_pending), so nothing here waits on a clock, except the last test of the loop itself."""

from __future__ import annotations

import asyncio
import logging

from workflowstate.server.core import errors
from workflowstate.server.core.cleanups import RetriedCleanups
from workflowstate.server.core.supervisor import Supervisor

log = logging.getLogger("tests.cleanups")


class _FailsThen:
    """A clean-up that finds the database away `failures` times, then succeeds; counts its tries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tries = 0
        self.done = asyncio.Event()

    async def __call__(self) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise errors.Unavailable("the database cannot be reached; nothing was written")
        self.done.set()


def _cleanups(retry_interval: float = 60.0) -> RetriedCleanups:
    return RetriedCleanups("test-cleanup", retry_interval=retry_interval, supervisor=Supervisor(), log=log)


async def test_a_clean_up_that_succeeds_at_once_is_not_kept() -> None:
    cleanups, work = _cleanups(), _FailsThen(failures=0)
    await cleanups.run("row", "test clean-up", work, moot_after=60)
    assert (work.tries, cleanups.pending()) == (1, 0)


async def test_a_failed_clean_up_is_tried_again_each_round_until_it_succeeds() -> None:
    cleanups, work = _cleanups(), _FailsThen(failures=2)
    await cleanups.run("row", "test clean-up", work, moot_after=60)
    assert (work.tries, cleanups.pending()) == (1, 1)
    await cleanups.retry_pending()
    assert (work.tries, cleanups.pending()) == (2, 1)
    await cleanups.retry_pending()
    assert (work.tries, cleanups.pending()) == (3, 0)
    await cleanups.retry_pending()
    assert work.tries == 3, "a clean-up that succeeded is not run again"


async def test_a_failed_clean_up_whose_row_expired_is_dropped_untried() -> None:
    cleanups, work = _cleanups(), _FailsThen(failures=5)
    await cleanups.run("row", "test clean-up", work, moot_after=0)
    await cleanups.retry_pending()
    assert (work.tries, cleanups.pending()) == (1, 0)


async def test_a_failed_clean_up_of_the_same_row_replaces_the_earlier_one() -> None:
    cleanups, earlier, later = _cleanups(), _FailsThen(failures=5), _FailsThen(failures=0)
    await cleanups.run("row", "test clean-up", earlier, moot_after=60)
    cleanups.later("row", "test clean-up", later, moot_after=60, reason="the database cannot be reached")
    assert cleanups.pending() == 1
    await cleanups.retry_pending()
    assert (earlier.tries, later.tries, cleanups.pending()) == (1, 1, 0)


async def test_the_retry_loop_runs_the_pending_clean_ups_until_cancelled() -> None:
    cleanups, work = _cleanups(retry_interval=0.01), _FailsThen(failures=3)
    cleanups.start()
    try:
        await cleanups.run("row", "test clean-up", work, moot_after=60)
        async with asyncio.timeout(5):
            await work.done.wait()
    finally:
        cleanups.cancel()
        await asyncio.wait(cleanups.tasks())
    assert work.tries == 4 and cleanups.pending() == 0
