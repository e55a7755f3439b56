"""One bench run on one database: the figures to measure, the server under test, ratios, output."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TextIO

import psycopg

from . import database, leases, lifecycle, report, sql_limit
from .processes import measure_in_processes
from .report import Row
from .server import serving
from .stats import Summary, summarize

GROUPS = ("sql", "lifecycle", "leases")
SQL_CONCURRENCIES = (1, 16)
LEASE_SHAPES = (leases.Shape(1, 1), leases.Shape(16, 4), leases.Shape(16, 16))


@dataclass(frozen=True)
class Settings:
    seconds: float
    """Length of each figure's measuring window."""

    groups: tuple[str, ...] = GROUPS
    """Which figures to measure: a subset of GROUPS."""

    json: bool = False
    """One JSON line per figure on stdout instead of the table."""

    server_args: tuple[str, ...] = ()
    """Extra command-line arguments for the server under test."""

    @property
    def warmup(self) -> float:
        """Warm-up before each window: a tenth of it (each worker also finishes a few units first)."""
        return 0.1 * self.seconds


@dataclass(frozen=True)
class Context:
    """What a figure needs to run."""

    database_url: str
    sql_schema: str
    target: str | None
    settings: Settings


@dataclass(frozen=True)
class Figure:
    group: str
    bench: str
    conc: int
    measure: Callable[[Context], Awaitable[Summary]]
    shape: str | None = None

    def label(self, settings: Settings) -> str:
        seconds = sql_limit.whole_seconds(settings.seconds) if self.group == "sql" else settings.seconds
        return f"{self.bench} {self.shape or f'conc={self.conc}'} ({seconds:g} s)"


async def _sql(clients: int, context: Context) -> Summary:
    settings = context.settings
    return await sql_limit.measure(
        context.database_url, context.sql_schema, clients, warmup=settings.warmup, seconds=settings.seconds
    )


async def _lifecycle(processes: int, concurrency: int, context: Context) -> Summary:
    assert context.target
    settings = context.settings
    if processes == 1:
        tally = await lifecycle.measure(context.target, concurrency, warmup=settings.warmup, seconds=settings.seconds)
    else:
        tally = await measure_in_processes(
            context.target, processes, concurrency, warmup=settings.warmup, seconds=settings.seconds
        )
    return summarize(tally)


async def _leases(shape: leases.Shape, context: Context) -> Summary:
    assert context.target
    settings = context.settings
    return summarize(await leases.measure(context.target, shape, warmup=settings.warmup, seconds=settings.seconds))


def plan(groups: tuple[str, ...]) -> list[Figure]:
    """The figures of the chosen groups, the SQL limit first so every later row has its ratio."""
    figures: list[Figure] = []
    if "sql" in groups:
        figures += [Figure("sql", "sql-limit", conc, partial(_sql, conc)) for conc in SQL_CONCURRENCIES]
    if "lifecycle" in groups:
        figures += [
            Figure("lifecycle", "grpc-lifecycle", 1, partial(_lifecycle, 1, 1)),
            Figure("lifecycle", "grpc-lifecycle", 16, partial(_lifecycle, 1, 16)),
            Figure("lifecycle", "grpc-lifecycle-4proc", 16, partial(_lifecycle, 4, 4)),
        ]
    if "leases" in groups:
        figures += [
            Figure("leases", "lease-cycles", shape.workers, partial(_leases, shape), shape.label)
            for shape in LEASE_SHAPES
        ]
    return figures


def _ratio(figure: Figure, per_s: float, limits: dict[int, float]) -> float | None:
    """per_s over the SQL limit's at the same concurrency; None for leases or without that limit."""
    limit = limits.get(figure.conc)
    if figure.group == "leases" or not limit:
        return None
    return per_s / limit


async def run(
    settings: Settings, database_url: str, *, out: TextIO = sys.stdout, progress: TextIO = sys.stderr
) -> None:
    """Measure every figure of ``settings.groups`` and write the rows; drop the bench's schemas at the end."""
    header = report.machine_line(await database.server_version(database_url), settings.seconds)
    if settings.json:
        print(header, file=progress, flush=True)  # stdout has the figures only
    token = uuid.uuid4().hex[:8]
    server_schema, sql_schema = f"bench_{token}", f"bench_{token}_sql"
    figures = plan(settings.groups)
    rows: list[Row] = []
    limits: dict[int, float] = {}
    try:
        if "sql" in settings.groups:
            await sql_limit.create_tables(database_url, sql_schema)
        needs_server = any(figure.group != "sql" for figure in figures)
        async with serving(database_url, server_schema, settings.server_args) if needs_server else contextlib.nullcontext() as target:
            context = Context(database_url, sql_schema, target, settings)
            for number, figure in enumerate(figures, 1):
                print(f"[{number}/{len(figures)}] {figure.label(settings)} …", file=progress, flush=True)
                summary = await figure.measure(context)
                if figure.group == "sql":
                    limits[figure.conc] = summary.per_s
                row = Row(figure.bench, figure.conc, summary, _ratio(figure, summary.per_s, limits), figure.shape)
                rows.append(row)
                if settings.json:
                    report.write_json(row, out)
    finally:
        try:
            await database.drop_schemas(database_url, [server_schema, sql_schema])
        except psycopg.Error as err:
            print(f"bench: could not drop the schemas {server_schema}, {sql_schema}: {err}", file=progress)
    if not settings.json:
        report.write_table(header, rows, out)
