"""The benchmark's harness works: `python -m bench --smoke --json` reports every figure, with its ratio.

This checks the harness, never the numbers: a smoke run measures each figure for half a second on
whatever machine runs the tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE_TIMEOUT_S = 180

EXPECTED_FIGURES = [
    ("sql-limit", 1, None),
    ("sql-limit", 16, None),
    ("sql-limit", 64, None),
    ("sql-set-limit", 32, "2x16"),
    ("grpc-lifecycle", 1, None),
    ("grpc-lifecycle", 16, None),
    ("python-workflow", 16, None),
    ("grpc-lifecycle", 64, None),
    ("grpc-lifecycle-unbatched", 16, None),
    ("grpc-lifecycle-4proc", 16, None),
    ("grpc-lifecycle-unary-4proc", 16, None),
    ("lease-cycles", 1, "1w/1k"),
    ("lease-cycles", 16, "16w/4k"),
    ("lease-cycles", 16, "16w/16k"),
    ("step-e2e", 1, "1srv"),
    ("step-e2e", 1, "2srv"),
    ("pikku-workflow-pg", 16, None),
    ("pikku-workflow-workflowstate", 16, None),
    ("sql-dispatch-limit", 4, None),
    ("grpc-dispatch", 4, None),
    ("grpc-dispatch-policies", 4, None),
    ("grpc-dispatch-keyed", 4, None),
    ("sql-dispatch-bulk-limit", 4, None),
    ("grpc-dispatch-bulk", 4, None),
]
# Which SQL limit each figure is compared with.
LIMIT_OF = {"grpc-lifecycle": "sql-limit", "grpc-lifecycle-4proc": "sql-limit", "sql-limit": "sql-limit",
            "grpc-lifecycle-unbatched": "sql-limit", "grpc-lifecycle-unary-4proc": "sql-limit", "sql-set-limit": "sql-set-limit",
            "grpc-dispatch": "sql-dispatch-limit", "grpc-dispatch-policies": "sql-dispatch-limit",
            "grpc-dispatch-keyed": "sql-dispatch-limit", "grpc-dispatch-bulk": "sql-dispatch-bulk-limit", "sql-dispatch-bulk-limit": "sql-dispatch-bulk-limit",
            "sql-dispatch-limit": "sql-dispatch-limit"}  # fmt: skip
# Figures with no SQL limit of their own work: leases, a step end to end, Pikku and Python workflows.
NO_SQL_LIMIT = ("lease-cycles", "step-e2e", "pikku-workflow-pg", "pikku-workflow-workflowstate", "python-workflow")
# The server's lifecycle rows, each also compared with the set-based SQL limit.
LIFECYCLES = ("grpc-lifecycle", "grpc-lifecycle-4proc", "grpc-lifecycle-unbatched", "grpc-lifecycle-unary-4proc")


def _bench_schemas(db: psycopg.Connection) -> set[str]:
    rows = db.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'").fetchall()
    return {row[0] for row in rows}


def _smoke(database_url: str, *args: str) -> tuple[list[dict], str]:
    """Run `python -m bench --smoke --json ARGS`; its JSON rows and its stderr (the progress lines)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", "--database-url", database_url, *args],
        cwd=ROOT,
        check=False,  # the exit code is asserted below, with the bench's stderr
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def _check_cpu(row: dict) -> None:
    """The CPU one unit cost each side (bench/cpu.py): the server's only where a server served it;
    none for a row that counted nothing."""
    if row["per_s"] == 0:
        assert "cpu_client_ms" not in row, row
        return
    assert row["cpu_client_ms"] > 0 and row["cpu_postgres_ms"] > 0, row
    if not row["bench"].startswith(("sql-", "pikku-workflow-pg")):  # (an idle server may run beside them)
        assert row["cpu_server_ms"] > 0, row


def test_smoke_run_reports_every_figure_and_cleans_up(database_url: str, db: psycopg.Connection) -> None:
    schemas_before = _bench_schemas(db)
    rows, stderr = _smoke(database_url)

    assert [(row["bench"], row["conc"], row.get("shape")) for row in rows] == EXPECTED_FIGURES
    for row in rows:
        if row["bench"] == "grpc-lifecycle" and row["conc"] == 64:
            # Its 64 batched lifecycles move in step, and one round of them can outlast a smoke
            # run's half-second window on a loaded machine: the row may count none.
            assert row["per_s"] >= 0, row
            continue
        assert row["per_s"] > 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
    limits = {(row["bench"], row["conc"]): row["per_s"] for row in rows if row["bench"].startswith("sql-")}
    per_s = {row["bench"]: row["per_s"] for row in rows}
    for row in rows:
        if row["bench"] in NO_SQL_LIMIT:
            assert row["ratio_to_sql_limit"] is None, row
        else:
            expected = row["per_s"] / limits[(LIMIT_OF[row["bench"]], row["conc"])]
            assert row["ratio_to_sql_limit"] == pytest.approx(expected, rel=0.01, abs=1e-4), row
        if row["bench"] in LIFECYCLES:
            expected = row["per_s"] / per_s["sql-set-limit"]
            assert row["ratio_to_set_limit"] == pytest.approx(expected, rel=0.01, abs=1e-4), row
        else:
            assert "ratio_to_set_limit" not in row, row
        _check_cpu(row)
        if row["bench"] == "pikku-workflow-workflowstate":
            assert row["ratio"] == pytest.approx(row["per_s"] / per_s["pikku-workflow-pg"], rel=0.01, abs=1e-4), row
        elif row["bench"] == "python-workflow":
            lifecycle_16 = next(r["per_s"] for r in rows if (r["bench"], r["conc"]) == ("grpc-lifecycle", 16))
            assert row["ratio"] == pytest.approx(row["per_s"] / lifecycle_16, rel=0.01, abs=1e-4), row
        else:
            assert "ratio" not in row, row
    assert f"[{len(EXPECTED_FIGURES)}/{len(EXPECTED_FIGURES)}] grpc-dispatch-bulk conc=4" in stderr  # the progress lines
    # Its server's schema, the SQL limit's and @pikku/pg's are dropped.
    assert _bench_schemas(db) == schemas_before


SCALE_CONCURRENCIES = (16, 32, 64)


def _expected_scale_shapes(cpus: int) -> list[str]:
    """--scale's shapes, as its help describes them: `serve --workers N` for N = 1, a quarter and a
    half of the cores (2 at least); a quarter of the cores as client processes (a power of two, 16
    at most); conc 16, 32, 64 split among them."""
    workers = sorted({1, max(1, cpus // 4), max(2, cpus // 2) if cpus >= 2 else 1})
    processes = 1
    while processes * 2 <= min(max(1, cpus // 4), 16):
        processes *= 2
    return [f"w{n}/p{processes}x{conc // processes}" for n in workers for conc in SCALE_CONCURRENCIES]


def test_scale_smoke_run_reports_each_server_size_against_the_sql_limit(database_url: str, db: psycopg.Connection) -> None:
    schemas_before = _bench_schemas(db)
    rows, stderr = _smoke(database_url, "--scale")

    limits = [row for row in rows if row["bench"] == "sql-limit"]
    scaled = [row for row in rows if row["bench"] == "grpc-lifecycle-scale"]
    assert len(limits) + len(scaled) == len(rows), rows  # nothing of the default run
    assert [row["conc"] for row in limits] == list(SCALE_CONCURRENCIES)
    shapes = _expected_scale_shapes(os.cpu_count() or 1)
    assert [row["shape"] for row in scaled] == shapes
    assert [row["conc"] for row in scaled] == list(SCALE_CONCURRENCIES) * (len(shapes) // len(SCALE_CONCURRENCIES))
    for row in limits:
        assert row["per_s"] > 0 and row["ratio_to_sql_limit"] == 1.0, row
    limit_of = {row["conc"]: row["per_s"] for row in limits}
    # One batched round of a row's lifecycles (they move in step) can outlast a smoke run's
    # half-second window on a loaded machine, so a row may count none; all of them together must.
    assert sum(row["per_s"] for row in scaled) > 0, scaled
    for row in scaled:
        assert row["ratio_to_sql_limit"] == pytest.approx(row["per_s"] / limit_of[row["conc"]], rel=0.01, abs=1e-4), row
    # Every server size is its own server process, started and stopped by the bench.
    for workers in sorted({shape.split("/")[0] for shape in shapes}):
        assert f"bench: starting serve --workers {workers[1:]} " in stderr
    assert f"[{len(rows)}/{len(rows)}] grpc-lifecycle-scale {shapes[-1]}" in stderr
    assert _bench_schemas(db) == schemas_before
