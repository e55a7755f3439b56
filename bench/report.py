"""The bench's output: a table for people, or one JSON line per figure; and the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from typing import Any, TextIO

from .cpu import CpuSplit
from .stats import Summary


@dataclass(frozen=True)
class Row:
    """One figure: what was measured, at which concurrency (or worker/key shape), and how it went."""

    bench: str
    conc: int
    summary: Summary
    ratio_to_sql_limit: float | None
    shape: str | None = None
    more_ratios: dict[str, float] = field(default_factory=dict)
    """Ratios to other figures of the run, by name: ``ratio_to_set_limit`` (to sql-set-limit), ``ratio``
    (pikku-workflow-workflowstate to pikku-workflow-pg, python-workflow to grpc-lifecycle)."""

    def as_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "bench": self.bench,
            "conc": self.conc,
            "per_s": round(self.summary.per_s, 2),
            "p50_ms": _round(self.summary.p50_ms, 3),
            "p99_ms": _round(self.summary.p99_ms, 3),
            "ratio_to_sql_limit": _round(self.ratio_to_sql_limit, 4),
        }
        if self.shape is not None:
            line["shape"] = self.shape
        cpu = self.summary.cpu_ms
        if cpu is not None:
            line["cpu_client_ms"] = round(cpu.client, 4)
            line["cpu_server_ms"] = round(cpu.server, 4)
            line["cpu_postgres_ms"] = _round(cpu.postgres, 4)
        line.update((name, round(ratio, 4)) for name, ratio in self.more_ratios.items())
        return line


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def machine_line(postgres_version: str, seconds: float) -> str:
    return (
        f"# {platform.platform()} | {os.cpu_count()} CPUs | Python {platform.python_version()}"
        f" | {postgres_version} | {seconds:g} s per figure"
    )


def write_json(row: Row, out: TextIO) -> None:
    print(json.dumps(row.as_json()), file=out, flush=True)


COLUMNS = ("bench", "conc", "per_s", "p50_ms", "p99_ms", "ratio_to_sql_limit")
CPU_COLUMN = "cpu_ms_client/server/pg"
"""Milliseconds of CPU per unit within the window, on each side (bench.cpu)."""


def write_table(header: str, rows: list[Row], out: TextIO) -> None:
    """COLUMNS, then a column for each of the rows' other ratios (only those some row has)."""
    more = list(dict.fromkeys(name for row in rows for name in row.more_ratios))
    cells = [(*COLUMNS, *more, CPU_COLUMN)] + [
        (
            row.bench,
            row.shape or str(row.conc),
            f"{row.summary.per_s:.1f}",
            _format(row.summary.p50_ms, ".2f"),
            _format(row.summary.p99_ms, ".2f"),
            _format(row.ratio_to_sql_limit, ".3f"),
            *(_format(row.more_ratios.get(name), ".3f") for name in more),
            _cpu_cell(row.summary.cpu_ms),
        )
        for row in rows
    ]
    widths = [max(len(line[index]) for line in cells) for index in range(len(cells[0]))]
    print(header, file=out)
    for line in cells:
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))
        print("  ".join([first, *rest]), file=out)
    out.flush()


def _cpu_cell(cpu: CpuSplit | None) -> str:
    if cpu is None:
        return "-"
    return "/".join(_format(side, ".3f") for side in (cpu.client, cpu.server, cpu.postgres))


def _format(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
