"""The benchmark's harness works: `python -m bench --smoke --json` reports every figure, with its ratio.

This checks the harness, never the numbers: a smoke run measures each figure for half a second on
whatever machine runs the tests.
"""

from __future__ import annotations

import json
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
    ("grpc-lifecycle", 1, None),
    ("grpc-lifecycle", 16, None),
    ("grpc-lifecycle-unbatched", 16, None),
    ("grpc-lifecycle-4proc", 16, None),
    ("lease-cycles", 1, "1w/1k"),
    ("lease-cycles", 16, "16w/4k"),
    ("lease-cycles", 16, "16w/16k"),
    ("step-e2e", 1, "1srv"),
    ("step-e2e", 1, "2srv"),
    ("sql-dispatch-limit", 4, None),
    ("grpc-dispatch", 4, None),
    ("grpc-dispatch-bulk", 4, None),
]
# Which SQL limit each figure is compared with.
LIMIT_OF = {"grpc-lifecycle": "sql-limit", "grpc-lifecycle-4proc": "sql-limit", "sql-limit": "sql-limit",
            "grpc-lifecycle-unbatched": "sql-limit",
            "grpc-dispatch": "sql-dispatch-limit", "grpc-dispatch-bulk": "sql-dispatch-limit",
            "sql-dispatch-limit": "sql-dispatch-limit"}  # fmt: skip


def _bench_schemas(db: psycopg.Connection) -> set[str]:
    rows = db.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'").fetchall()
    return {row[0] for row in rows}


def test_smoke_run_reports_every_figure_and_cleans_up(database_url: str, db: psycopg.Connection) -> None:
    schemas_before = _bench_schemas(db)
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", "--database-url", database_url],
        cwd=ROOT,
        check=False,  # the exit code is asserted below, with the bench's stderr
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]

    assert [(row["bench"], row["conc"], row.get("shape")) for row in rows] == EXPECTED_FIGURES
    for row in rows:
        assert row["per_s"] > 0, row
        assert 0 < row["p50_ms"] <= row["p99_ms"], row
    limits = {(row["bench"], row["conc"]): row["per_s"] for row in rows if row["bench"].startswith("sql-")}
    for row in rows:
        if row["bench"] in ("lease-cycles", "step-e2e"):
            assert row["ratio_to_sql_limit"] is None, row
        else:
            expected = row["per_s"] / limits[(LIMIT_OF[row["bench"]], row["conc"])]
            assert row["ratio_to_sql_limit"] == pytest.approx(expected, rel=0.01, abs=1e-4), row
    assert "[14/14] grpc-dispatch-bulk conc=4" in result.stderr  # the progress lines
    assert _bench_schemas(db) == schemas_before  # its server's schema and the SQL limit's are dropped
