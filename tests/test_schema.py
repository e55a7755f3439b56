"""server/db/schema.sql is what the migrations build (scripts/generate_schema.py --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _check(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/generate_schema.py", "--check", "--database-url", database_url],
        cwd=cwd, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_committed_schema_is_what_the_migrations_build(database_url: str) -> None:
    result = _check(database_url, REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_fails_when_a_migration_changes_the_schema(database_url: str, tmp_path: Path) -> None:
    """The check above can fail: a copy of the repo with one more column in a migration is refused."""
    for folder in ("scripts", "server"):
        subprocess.run(["cp", "-r", str(REPO / folder), str(tmp_path / folder)], check=True)
    migration = next((tmp_path / "server" / "db" / "migrations").glob("0001_*.sql"))
    migration.write_text(migration.read_text() + "\nALTER TABLE {schema}.runs ADD COLUMN surprise integer;\n")
    # The copy's script reads the copy's schema.sql, but migrates with the installed package's
    # migrations; point the import at the copy so the changed migration is the one applied.
    result = subprocess.run(
        [sys.executable, "-c", _RUN_COPY, str(tmp_path), database_url], capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "surprise integer" in result.stderr


# Runs the copied script with `workflowstate.server` resolved to the copied server/ folder.
_RUN_COPY = """
import runpy, sys, workflowstate.server as server
copy, url = sys.argv[1], sys.argv[2]
server.__path__.insert(0, copy + "/server")
sys.argv = ["generate_schema.py", "--check", "--database-url", url]
runpy.run_path(copy + "/scripts/generate_schema.py", run_name="__main__")
"""
