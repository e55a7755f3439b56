"""bench.cpu's arithmetic: a side's CPU between two moments, from the samples around them."""

from __future__ import annotations

import pytest
from bench.cpu import CpuSampler, CpuSplit


class _Readings:
    """Stands for a CpuReader: hands out the given readings in turn (the /proc walk is exercised by
    the bench's smoke test, against real processes)."""

    def __init__(self, splits: list[CpuSplit]) -> None:
        self._splits = iter(splits)

    def read(self) -> CpuSplit:
        return next(self._splits)


def _sampler(times: list[float], splits: list[CpuSplit], monkeypatch: pytest.MonkeyPatch) -> CpuSampler:
    clock = iter(times)
    monkeypatch.setattr("bench.cpu.time.perf_counter", lambda: next(clock))
    sampler = CpuSampler(_Readings(splits))  # type: ignore[arg-type]
    for _ in times:
        sampler.sample()
    return sampler


def test_the_cpu_between_two_moments_is_interpolated_between_the_samples_around_them(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = _sampler(
        [10.0, 11.0, 12.0],
        [CpuSplit(1.0, 2.0, 3.0), CpuSplit(1.5, 3.0, 3.0), CpuSplit(2.5, 3.0, 5.0)],
        monkeypatch,
    )
    spent = sampler.between(10.5, 12.0)
    assert spent == CpuSplit(pytest.approx(1.25), pytest.approx(0.5), pytest.approx(2.0))  # type: ignore[arg-type]
    assert sampler.between(11.0, 11.0) is None  # an empty window
    assert sampler.between(9.0, 11.0) is None  # before the first sample: unknown, not guessed


def test_postgres_unknown_stays_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = _sampler([0.0, 1.0], [CpuSplit(0.0, 0.0, None), CpuSplit(1.0, 2.0, None)], monkeypatch)
    spent = sampler.between(0.0, 1.0)
    assert spent is not None and spent.postgres is None and spent.client == 1.0 and spent.server == 2.0
