"""Migrations: a schema newer than the server is refused before anything is applied, and a
migration's text reaches PostgreSQL as written (only {schema} is replaced)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from workflowstate.server.db.migrate import load_migrations, migrate, migration_text


async def _migrate(database_url: str, schema: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        return await migrate(conn, schema)


def test_a_newer_schema_is_refused_before_any_migration_runs(database_url: str, db: psycopg.Connection) -> None:
    schema = f"m_{uuid.uuid4().hex[:10]}"
    newest = max(m.version for m in load_migrations())
    assert asyncio.run(_migrate(database_url, schema)) == list(range(1, newest + 1))
    # A newer server's schema: a migration this server does not know, and one it knows marked
    # missing. Applying the known one again would fail on its existing tables with an SQL error;
    # the check must come first and say what is wrong.
    table = sql.Identifier(schema, "schema_migrations")
    db.execute(sql.SQL("INSERT INTO {} (version, name) VALUES (%s, 'from_the_future')").format(table), (newest + 1,))
    db.execute(sql.SQL("DELETE FROM {} WHERE version = %s").format(table), (newest,))
    with pytest.raises(RuntimeError, match=rf"newer than this server knows \({newest}\); upgrade the server"):
        asyncio.run(_migrate(database_url, schema))
    versions = [row[0] for row in db.execute(sql.SQL("SELECT version FROM {} ORDER BY version").format(table))]
    assert versions == [*range(1, newest), newest + 1]


def test_migration_text_keeps_braces_and_quotes_the_schema(database_url: str, db: psycopg.Connection) -> None:
    """A '{}' literal (jsonb, format strings) is kept; SQL.format would have refused it."""
    text = migration_text("CREATE TABLE {schema}.t (doc jsonb NOT NULL DEFAULT '{}', fmt text DEFAULT '{0}')", 'odd "name"')
    assert text == "CREATE TABLE \"odd \"\"name\"\"\".t (doc jsonb NOT NULL DEFAULT '{}', fmt text DEFAULT '{0}')"
    schema = f"m_{uuid.uuid4().hex[:10]}"
    db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    db.execute(migration_text("CREATE TABLE {schema}.t (doc jsonb NOT NULL DEFAULT '{}')", schema))
    db.execute(migration_text("INSERT INTO {schema}.t DEFAULT VALUES", schema))
    assert db.execute(migration_text("SELECT doc FROM {schema}.t", schema)).fetchone() == ({},)
