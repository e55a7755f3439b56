"""A closed loop of workers: each repeats one unit of work; warm up, then count a fixed window.

The window opens when every worker has warmed up (the warm-up time has passed and it finished a
few units) and lasts ``seconds``. A unit counts when it finishes inside the window, whenever it
began, so the count over the window's length is the steady throughput; units finishing after the
window are dropped and each worker stops at its first one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence

from .stats import Tally

# One unit of work; it may return how many things it did (steps of a bulk worker's round), else one.
Unit = Callable[[], Awaitable[int | None]]

MIN_WARMUP_UNITS = 3
"""Units every worker finishes before the window opens, however short the warm-up time."""

OVERRUN_S = 60.0
"""How much longer than warm-up + window a loop may take before it is abandoned as stuck."""


class _Window:
    def __init__(self, workers: int, seconds: float) -> None:
        self.cold_workers = workers
        self.seconds = seconds
        self.start: float | None = None
        self.end = math.inf
        self.latencies_ms: list[float] = []
        self.count = 0

    def worker_warm(self, now: float) -> None:
        self.cold_workers -= 1
        if self.cold_workers == 0:
            self.start, self.end = now, now + self.seconds


async def _work(unit: Unit, window: _Window, warm_until: float) -> None:
    warm, warm_units = False, 0
    while True:
        began = time.perf_counter()
        done = await unit()
        finished = time.perf_counter()
        if window.start is None:
            warm_units += 1
            if not warm and warm_units >= MIN_WARMUP_UNITS and finished >= warm_until:
                warm = True
                window.worker_warm(finished)
            continue
        if finished > window.end:
            return
        window.latencies_ms.append((finished - began) * 1000.0)
        window.count += 1 if done is None else done


async def closed_loop(units: Sequence[Unit], *, warmup: float, seconds: float) -> Tally:
    """Run one worker per unit until the window of ``seconds`` after the warm-up has passed."""
    window = _Window(len(units), seconds)
    warm_until = time.perf_counter() + warmup
    async with asyncio.timeout(warmup + seconds + OVERRUN_S):
        async with asyncio.TaskGroup() as group:
            for unit in units:
                group.create_task(_work(unit, window, warm_until))
    span = None if window.start is None else (window.start, window.start + seconds)
    return Tally(count=window.count, seconds=seconds, latencies_ms=window.latencies_ms, window=span)
