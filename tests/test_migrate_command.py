"""`workflowstate migrate`, `serve --no-migrate` and `--version`: the deploy step that migrates once,
replicas that never migrate and refuse a schema behind them, and the version an image reports."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from support.server_process import ServerProcess

from workflowstate.client import WorkflowStateClient
from workflowstate.server.db.migrate import load_migrations

WORKFLOWSTATE = [sys.executable, "-m", "workflowstate.server"]
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _clean_env(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    return {**env, **variables}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WORKFLOWSTATE, *args], capture_output=True, text=True, timeout=120, env=env or _clean_env())


def _applied_versions(db: psycopg.Connection, schema: str) -> list[int]:
    table = sql.Identifier(schema, "schema_migrations")
    return [row[0] for row in db.execute(sql.SQL("SELECT version FROM {} ORDER BY version").format(table))]


def test_migrate_prints_each_migration_it_applies_then_a_no_migrate_replica_serves(database_url: str, db: psycopg.Connection) -> None:
    schema = f"mc_{uuid.uuid4().hex[:10]}"
    migrations = load_migrations()
    # From the variables, as a container's deploy step is configured.
    result = _run("migrate", env=_clean_env(WORKFLOWSTATE_DATABASE_URL=database_url, WORKFLOWSTATE_SCHEMA=schema))
    assert result.returncode == 0, result.stderr
    for migration in migrations:
        assert f"applied {migration.version:04d}_{migration.name}" in result.stdout, result.stdout
    assert f"schema {schema!r} is at migration {migrations[-1].version}" in result.stdout, result.stdout
    assert _applied_versions(db, schema) == [m.version for m in migrations]

    replica = ServerProcess(database_url, schema, "--no-migrate").start()
    try:
        with WorkflowStateClient(replica.target) as client:
            run = client.create_run("deploy-kit", {"n": 1})
            assert client.get_run(run.run_id).workflow == "deploy-kit"
    finally:
        assert replica.stop() == 0, replica.log_text()[-4000:]
    assert "workflowstate migrate" not in replica.log_text()


def test_migrate_twice_applies_nothing_the_second_time(database_url: str, db: psycopg.Connection) -> None:
    schema = f"mc_{uuid.uuid4().hex[:10]}"
    first = _run("migrate", "--database-url", database_url, "--schema", schema)
    assert first.returncode == 0, first.stderr
    table = sql.Identifier(schema, "schema_migrations")
    applied_at = db.execute(sql.SQL("SELECT version, applied_time FROM {} ORDER BY version").format(table)).fetchall()

    second = _run("migrate", "--database-url", database_url, "--schema", schema)
    assert second.returncode == 0, second.stderr
    assert "applied" not in second.stdout.replace("nothing applied", ""), second.stdout
    assert f"schema {schema!r} is at migration {load_migrations()[-1].version}: nothing applied" in second.stdout
    assert db.execute(sql.SQL("SELECT version, applied_time FROM {} ORDER BY version").format(table)).fetchall() == applied_at


def test_serve_no_migrate_refuses_an_unmigrated_schema_naming_the_command_to_run(database_url: str, db: psycopg.Connection) -> None:
    schema = f"mc_{uuid.uuid4().hex[:10]}"
    result = subprocess.run(
        [*WORKFLOWSTATE, "serve", "--listen", "127.0.0.1:0", "--http-listen", "off", "--database-url", database_url, "--schema", schema],
        capture_output=True, text=True, timeout=120, env=_clean_env(WORKFLOWSTATE_NO_MIGRATE="true"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    newest = load_migrations()[-1]
    assert f"schema {schema!r} lacks migrations 0001_" in result.stderr, result.stderr
    assert f"{newest.version:04d}_{newest.name}" in result.stderr, result.stderr
    assert f"run `workflowstate migrate --schema {schema}` with the same --database-url" in result.stderr, result.stderr
    # Nothing was written: not even the schema.
    assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() == (0,)


@contextlib.contextmanager
def _port_nobody_listens_on() -> Iterator[int]:
    """A loopback port bound (so no other process takes it) but not listening: connections to it are refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield int(bound.getsockname()[1])


def test_migrate_says_plainly_when_the_database_cannot_be_reached() -> None:
    with _port_nobody_listens_on() as port:
        result = _run("migrate", "--database-url", f"postgresql://postgres@127.0.0.1:{port}/postgres", "--startup-timeout", "1")
    assert result.returncode == 1, result.stderr
    assert "workflowstate migrate: cannot reach the database: could not connect to the database within 1s" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_without_a_database_url_names_the_flag_and_its_variable() -> None:
    result = _run("migrate")
    assert result.returncode == 2, result.stderr
    assert "workflowstate migrate: no database URL: pass --database-url or set WORKFLOWSTATE_DATABASE_URL" in result.stderr


def test_version_prints_the_version_of_pyproject() -> None:
    version = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    result = _run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"workflowstate {version}"
