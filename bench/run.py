"""One bench run on one database: the figures to measure, the server under test, ratios, output."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TextIO

import psycopg

from . import cpu, database, dispatch, e2e, leases, lifecycle, pikku_workflow, python_workflow, report, scale, sql_limit
from .processes import measure_in_processes
from .report import Row
from .server import serving
from .stats import Summary, summarize

GROUPS = ("sql", "lifecycle", "leases", "dispatch", "e2e", "pikku")
SQL_CONCURRENCIES = (1, 16, 64)
SET_GROUP_SIZE = 16
"""Lifecycles one run of the set-based script serves with each of its statements."""
SET_CLIENTS = 2
"""Groups the set-based limit has in flight at once: while one group's statement runs, the next group
forms, so a grouping server has about two statements of a kind in flight."""
E2E_SERVERS = (1, 2)
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

    scale: bool = False
    """Measure how the lifecycle scales with the server's --workers (bench.scale) instead of ``groups``."""

    @property
    def warmup(self) -> float:
        """Warm-up before each window: a tenth of it (each worker also finishes a few units first)."""
        return 0.1 * self.seconds


@dataclass(frozen=True)
class Context:
    """What a figure needs to run."""

    database_url: str
    sql_schema: str
    server_schema: str
    target: str | None
    settings: Settings
    pikku_schema: str = ""
    """Where @pikku/pg keeps its tables."""


@dataclass(frozen=True)
class Figure:
    group: str
    bench: str
    conc: int
    measure: Callable[[Context], Awaitable[Summary]]
    shape: str | None = None
    # Which SQL limit this figure is, or is compared with: the lifecycle's or remote mode's.
    work: str | None = "lifecycle"
    # The server this figure needs: `serve` with these arguments (before the user's --server-arg).
    # Consecutive figures with the same ones share one server process.
    server_args: tuple[str, ...] = ()
    # More ratios of this row: (name of the ratio in the row, the earlier figure it divides by).
    compared_with: tuple[tuple[str, str], ...] = ()

    @property
    def is_limit(self) -> bool:
        return self.bench.startswith("sql-")

    def label(self, settings: Settings) -> str:
        seconds = sql_limit.whole_seconds(settings.seconds) if self.is_limit else settings.seconds
        return f"{self.bench} {self.shape or f'conc={self.conc}'} ({seconds:g} s)"


async def _sql(clients: int, context: Context) -> Summary:
    settings = context.settings
    return await sql_limit.measure(
        context.database_url, context.sql_schema, clients, warmup=settings.warmup, seconds=settings.seconds
    )


async def _sql_set(context: Context) -> Summary:
    settings = context.settings
    return await sql_limit.measure(
        context.database_url, context.sql_schema, SET_CLIENTS, warmup=settings.warmup, seconds=settings.seconds,
        script=sql_limit.SET_LIFECYCLE_SCRIPT, units_per_run=SET_GROUP_SIZE,
    )  # fmt: skip


async def _sql_dispatch(context: Context) -> Summary:
    settings = context.settings
    size = dispatch.backlog_size(settings.warmup, settings.seconds)
    await dispatch.fill_backlog(context.database_url, context.sql_schema, size, server_tables=False)
    return await sql_limit.measure(
        context.database_url, context.sql_schema, dispatch.WORKERS, warmup=settings.warmup, seconds=settings.seconds,
        script=sql_limit.DISPATCH_SCRIPT,
    )  # fmt: skip


async def _sql_dispatch_bulk(context: Context) -> Summary:
    settings = context.settings
    size = dispatch.backlog_size(settings.warmup, settings.seconds)
    await dispatch.fill_backlog(context.database_url, context.sql_schema, size, server_tables=False)
    with tempfile.TemporaryDirectory(prefix="bench-sql-") as folder:
        return await sql_limit.measure(
            context.database_url, context.sql_schema, dispatch.WORKERS, warmup=settings.warmup, seconds=settings.seconds,
            script=sql_limit.dispatch_bulk_script(Path(folder), dispatch.BULK_IN_FLIGHT), units_per_run=dispatch.BULK_IN_FLIGHT,
        )  # fmt: skip


async def _dispatch(bulk: bool, context: Context, policies: dispatch.Policies | None = None) -> Summary:
    assert context.target
    settings = context.settings
    size = dispatch.backlog_size(settings.warmup, settings.seconds)
    await dispatch.fill_backlog(context.database_url, context.server_schema, size, server_tables=True, policies=policies)
    try:
        return summarize(await dispatch.measure(context.target, warmup=settings.warmup, seconds=settings.seconds, bulk=bulk))
    finally:
        await dispatch.clear_backlog(context.database_url, context.server_schema)


async def _lifecycle(processes: int, concurrency: int, context: Context, *, batching: bool = True) -> Summary:
    assert context.target
    settings = context.settings
    if processes == 1:
        tally = await lifecycle.measure(
            context.target, concurrency, warmup=settings.warmup, seconds=settings.seconds, batching=batching
        )
    else:
        tally = await measure_in_processes(
            context.target, processes, concurrency, warmup=settings.warmup, seconds=settings.seconds, batching=batching
        )
    return summarize(tally)


async def _pikku(backend: str, context: Context) -> Summary:
    assert context.target
    settings = context.settings
    tally = await pikku_workflow.measure(
        backend, database_url=context.database_url, pg_schema=context.pikku_schema, target=context.target,
        warmup=settings.warmup, seconds=settings.seconds,
    )  # fmt: skip
    return summarize(tally)


async def _python_workflow(concurrency: int, context: Context) -> Summary:
    assert context.target
    settings = context.settings
    return summarize(await python_workflow.measure(context.target, concurrency, warmup=settings.warmup, seconds=settings.seconds))


async def _lifecycle_scale(shape: scale.Shape, context: Context) -> Summary:
    assert context.target
    settings = context.settings
    tally = await measure_in_processes(
        context.target, shape.client_processes, shape.per_process, warmup=settings.warmup, seconds=settings.seconds,
        connections=shape.server_workers,
    )  # fmt: skip
    return summarize(tally)


async def _leases(shape: leases.Shape, context: Context) -> Summary:
    assert context.target
    settings = context.settings
    return summarize(await leases.measure(context.target, shape, warmup=settings.warmup, seconds=settings.seconds))


async def _step_e2e(servers: int, context: Context) -> Summary:
    """The orchestrator on the server under test; its worker there too, or on a second server."""
    assert context.target
    settings = context.settings
    async with contextlib.AsyncExitStack() as stack:
        worker_target = context.target
        if servers == 2:
            worker_target = await stack.enter_async_context(serving(context.database_url, context.server_schema, settings.server_args))
        tally = await e2e.measure(context.target, worker_target, warmup=settings.warmup, seconds=settings.seconds)
    return summarize(tally)


def plan(groups: tuple[str, ...]) -> list[Figure]:
    """The figures of the chosen groups, the SQL limit first so every later row has its ratio."""
    figures: list[Figure] = []
    if "sql" in groups:
        figures += [Figure("sql", "sql-limit", conc, partial(_sql, conc)) for conc in SQL_CONCURRENCIES]
        figures += [
            Figure("sql", "sql-set-limit", SET_CLIENTS * SET_GROUP_SIZE, _sql_set, f"{SET_CLIENTS}x{SET_GROUP_SIZE}",
                   work="lifecycle-set")
        ]  # fmt: skip
    if "lifecycle" in groups:
        # Each also against the set-based limit, when measured: what grouping on the server can reach.
        to_set = partial(Figure, "lifecycle", compared_with=(("ratio_to_set_limit", "sql-set-limit"),))
        figures += [
            to_set("grpc-lifecycle", 1, partial(_lifecycle, 1, 1)),
            to_set("grpc-lifecycle", 16, partial(_lifecycle, 1, 16)),
            # Right after the lifecycle at the same concurrency, the figure its ratio divides by.
            Figure("lifecycle", "python-workflow", 16, partial(_python_workflow, 16), work=None,
                   compared_with=(("ratio", "grpc-lifecycle"),)),
            to_set("grpc-lifecycle", 64, partial(_lifecycle, 1, 64)),
            to_set("grpc-lifecycle-unbatched", 16, partial(_lifecycle, 1, 16, batching=False)),
            to_set("grpc-lifecycle-4proc", 16, partial(_lifecycle, 4, 4)),
            # The shape of the TypeScript SDK's and the Pikku adapter's callers: unary calls, from several processes.
            to_set("grpc-lifecycle-unary-4proc", 16, partial(_lifecycle, 4, 4, batching=False)),
        ]
    if "leases" in groups:
        figures += [
            Figure("leases", "lease-cycles", shape.workers, partial(_leases, shape), shape.label, work=None)
            for shape in LEASE_SHAPES
        ]
    # Before dispatch: its backlog of due steps, left in the schema, would slow every claim after.
    if "e2e" in groups:
        figures += [
            Figure("e2e", "step-e2e", 1, partial(_step_e2e, servers), f"{servers}srv", work=None) for servers in E2E_SERVERS
        ]
    if "pikku" in groups:
        figures += [
            Figure("pikku", "pikku-workflow-pg", pikku_workflow.CONCURRENCY, partial(_pikku, "pg"), work=None),
            Figure("pikku", "pikku-workflow-workflowstate", pikku_workflow.CONCURRENCY, partial(_pikku, "workflowstate"),
                   work=None, compared_with=(("ratio", "pikku-workflow-pg"),)),
        ]  # fmt: skip
    if "dispatch" in groups:
        figures += [
            Figure("dispatch", "sql-dispatch-limit", dispatch.WORKERS, _sql_dispatch, work="dispatch"),
            Figure("dispatch", "grpc-dispatch", dispatch.WORKERS, partial(_dispatch, False), work="dispatch"),
            # The same with every dispatch policy present but none limiting (what the policies cost
            # when they do not limit), then with concurrency keys limiting (dispatch.KEYS_LIMITING).
            Figure("dispatch", "grpc-dispatch-policies", dispatch.WORKERS,
                   partial(_dispatch, False, policies=dispatch.NOT_LIMITING), work="dispatch"),
            Figure("dispatch", "grpc-dispatch-keyed", dispatch.WORKERS,
                   partial(_dispatch, False, policies=dispatch.KEYS_LIMITING), work="dispatch"),
            Figure("dispatch", "sql-dispatch-bulk-limit", dispatch.WORKERS, _sql_dispatch_bulk, work="dispatch-bulk"),
            Figure("dispatch", "grpc-dispatch-bulk", dispatch.WORKERS, partial(_dispatch, True), work="dispatch-bulk"),
        ]
    return figures


def plan_scale(cpus: int) -> list[Figure]:
    """The SQL limit at every concurrency of bench.scale, then the lifecycle at each shape, one
    server per --workers count."""
    figures = [Figure("sql", "sql-limit", conc, partial(_sql, conc)) for conc in scale.CONCURRENCIES]
    figures += [
        Figure("scale", "grpc-lifecycle-scale", shape.conc, partial(_lifecycle_scale, shape), shape.label,
               server_args=shape.server_args())
        for shape in scale.shapes(cpus)
    ]  # fmt: skip
    return figures


def _cpu_per_unit(summary: Summary, sampler: cpu.CpuSampler) -> Summary:
    """The summary with the milliseconds of CPU one unit cost each side within its window."""
    if summary.window is None or summary.per_s <= 0:
        return summary
    spent = sampler.between(*summary.window)
    if spent is None:
        return summary
    units = summary.per_s * (summary.window[1] - summary.window[0])
    return replace(summary, cpu_ms=spent.scaled(1000.0 / units))


def _ratio(figure: Figure, per_s: float, limits: dict[tuple[str, int], float]) -> float | None:
    """per_s over the SQL limit's of the same work at the same concurrency; None for leases or
    without that limit."""
    limit = limits.get((figure.work, figure.conc)) if figure.work else None
    return per_s / limit if limit else None


async def run(
    settings: Settings, database_url: str, *, out: TextIO = sys.stdout, progress: TextIO = sys.stderr
) -> None:
    """Measure every figure of ``settings.groups`` (or of --scale) and write the rows; drop the bench's
    schemas at the end."""
    header = report.machine_line(await database.server_version(database_url), settings.seconds)
    if settings.json:
        print(header, file=progress, flush=True)  # stdout has the figures only
    token = uuid.uuid4().hex[:8]
    server_schema, sql_schema, pikku_schema = f"bench_{token}", f"bench_{token}_sql", f"bench_{token}_pikku"
    figures = plan_scale(os.cpu_count() or 1) if settings.scale else plan(settings.groups)
    rows: list[Row] = []
    limits: dict[tuple[str, int], float] = {}
    measured: dict[str, float] = {}  # per_s of each bench, for the figures compared with it
    server: contextlib.AsyncExitStack | None = None
    cpu_reader = cpu.CpuReader(await cpu.postmaster_of(database_url))
    try:
        if any(figure.group == "pikku" for figure in figures):
            # First, so that a machine without Node fails at once, not after the other figures.
            print("bench: installing and building the pikku figures' Node program", file=progress, flush=True)
            await pikku_workflow.prepare()
        if any(figure.is_limit for figure in figures):
            await sql_limit.create_tables(database_url, sql_schema)
        target: str | None = None
        server_args: tuple[str, ...] | None = None
        for number, figure in enumerate(figures, 1):
            if not figure.is_limit and figure.server_args != server_args:
                # This figure needs another server: stop the one running, start its own.
                if server is not None:
                    await server.aclose()
                server, server_args = contextlib.AsyncExitStack(), figure.server_args
                all_args = (*figure.server_args, *settings.server_args)
                if figure.server_args:
                    print(f"bench: starting serve {' '.join(all_args)}", file=progress, flush=True)
                target = await server.enter_async_context(serving(database_url, server_schema, all_args))
            context = Context(database_url, sql_schema, server_schema, target, settings, pikku_schema)
            print(f"[{number}/{len(figures)}] {figure.label(settings)} …", file=progress, flush=True)
            async with cpu.sampling(cpu_reader) as sampler:
                summary = await figure.measure(context)
            summary = _cpu_per_unit(summary, sampler)
            if figure.is_limit and figure.work:
                limits[(figure.work, figure.conc)] = summary.per_s
            measured[figure.bench] = summary.per_s
            more = {name: summary.per_s / measured[bench] for name, bench in figure.compared_with if measured.get(bench)}
            row = Row(figure.bench, figure.conc, summary, _ratio(figure, summary.per_s, limits), figure.shape, more)
            rows.append(row)
            if settings.json:
                report.write_json(row, out)
    finally:
        if server is not None:
            await server.aclose()
        try:
            await database.drop_schemas(database_url, [server_schema, sql_schema, pikku_schema])
        except psycopg.Error as err:
            print(f"bench: could not drop the schemas {server_schema}, {sql_schema}, {pikku_schema}: {err}", file=progress)
    if not settings.json:
        report.write_table(header, rows, out)
