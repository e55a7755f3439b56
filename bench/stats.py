"""What a measuring window saw, and the three numbers every figure reports."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .cpu import CpuSplit


@dataclass(frozen=True)
class Tally:
    """Units of work completed within a window of ``seconds``, with the latency of each."""

    count: int
    seconds: float
    latencies_ms: list[float]
    window: tuple[float, float] | None = None
    """When the window opened and closed, on CLOCK_MONOTONIC (time.perf_counter, comparable across
    processes): what bench.cpu measures the CPU of. None when unknown."""


@dataclass(frozen=True)
class Summary:
    """Throughput and latency percentiles of one figure; a percentile is None when unknown."""

    per_s: float
    p50_ms: float | None
    p99_ms: float | None
    window: tuple[float, float] | None = None
    cpu_ms: CpuSplit | None = None
    """Milliseconds of CPU one unit cost the clients, the server and PostgreSQL (bench.cpu)."""


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``values`` (0 < fraction <= 1); None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(tally: Tally) -> Summary:
    return Summary(
        per_s=tally.count / tally.seconds,
        p50_ms=percentile(tally.latencies_ms, 0.50),
        p99_ms=percentile(tally.latencies_ms, 0.99),
        window=tally.window,
    )


def merge(tallies: Iterable[Tally]) -> Tally:
    """The tallies of client processes that measured side by side over windows of the same length."""
    parts = list(tallies)
    windows = [part.window for part in parts if part.window is not None]
    return Tally(
        count=sum(part.count for part in parts),
        seconds=max(part.seconds for part in parts),
        latencies_ms=[latency for part in parts for latency in part.latencies_ms],
        # The span all the windows cover together (they open within a moment of each other).
        window=(min(w[0] for w in windows), max(w[1] for w in windows)) if len(windows) == len(parts) else None,
    )
