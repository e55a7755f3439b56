"""Create and upgrade the schema at start-up with numbered migrations (db/migrations/NNNN_*.sql).

Several server processes may start at once against one database: each takes the same
transaction-scoped advisory lock before looking at the schema, so exactly one applies a missing
migration and the others then find it applied. A migration and its bookkeeping row commit together.
A schema that is newer than this server knows is refused before anything is applied. A schema
that lacks nothing is only read (no lock, no DDL), so that a replica started with --no-migrate, or
under a role that may not create, starts on a schema `workflowstate migrate` prepared.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from typing import NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from .schema_name import check_schema_name

log = logging.getLogger("workflowstate.server.migrations")

# Two int4 keys: a constant naming this purpose, then the schema's hash, so servers that use
# different schemas of one database do not wait for each other. A collision only serialises
# two start-ups; it cannot corrupt anything.
_LOCK_PURPOSE = 0x57534D47  # "WSMG"


class Migration(NamedTuple):
    version: int
    name: str
    text: str


def load_migrations() -> list[Migration]:
    """The migrations in version order; file names are NNNN_description.sql."""
    migrations = []
    for entry in (resources.files("workflowstate.server.db") / "migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    migrations.sort()
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return migrations


def migration_text(text: str, schema: str) -> str:
    """A migration with the quoted schema where it says {schema}.

    A plain replacement, not SQL.format: a migration may hold any literal, '{}' included.
    """
    return text.replace("{schema}", sql.Identifier(schema).as_string(None))


class SchemaBehind(RuntimeError):
    """The schema lacks migrations that this server needs, and it was told not to apply them."""


def _refuse_newer(schema: str, done: set[int], newest_known: int) -> None:
    if done and max(done) > newest_known:
        raise RuntimeError(
            f"schema {schema!r} is at migration {max(done)}, newer than this server knows ({newest_known}); "
            "upgrade the server"
        )


async def missing_migrations(conn: psycopg.AsyncConnection[DictRow], schema: str) -> list[Migration]:
    """The migrations the schema lacks, read without writing anything (all of them when it has no
    bookkeeping table yet); a schema newer than this server knows is refused."""
    migrations = load_migrations()
    table = migration_text("{schema}.schema_migrations", check_schema_name(schema))
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (table,))
    row = await cursor.fetchone()
    done: set[int] = set()
    if row is not None and row["present"]:
        cursor = await conn.execute(migration_text("SELECT version FROM {schema}.schema_migrations", schema))
        done = {row["version"] for row in await cursor.fetchall()}
    _refuse_newer(schema, done, max((m.version for m in migrations), default=0))
    return [migration for migration in migrations if migration.version not in done]


async def require_migrated(conn: psycopg.AsyncConnection[DictRow], schema: str) -> None:
    """Raise SchemaBehind, naming the command that migrates, when the schema lacks a migration."""
    missing = await missing_migrations(conn, schema)
    if missing:
        first, last = missing[0], missing[-1]
        span = f"{first.version:04d}_{first.name}" + (f" to {last.version:04d}_{last.name}" if last != first else "")
        raise SchemaBehind(
            f"schema {schema!r} lacks migrations {span} and --no-migrate forbids applying them: "
            f"run `workflowstate migrate --schema {schema}` with the same --database-url first (or serve without --no-migrate)"
        )


async def migrate(conn: psycopg.AsyncConnection[DictRow], schema: str) -> list[int]:
    """Apply the migrations the schema lacks; return the versions applied now."""
    if not await missing_migrations(conn, schema):
        return []  # current: read only, so a role that may not create starts too
    migrations = load_migrations()
    newest_known = max((m.version for m in migrations), default=0)
    bookkeeping = migration_text(
        "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, applied_time timestamptz NOT NULL DEFAULT now())",
        schema,
    )
    check_schema_name(schema)
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_PURPOSE, schema))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        # The schema first (pg_catalog after it, so a table of the schema never meets a temporary
        # one of the session): a function created with SET search_path FROM CURRENT keeps this path,
        # so its body names the schema's tables without the schema's name in its text.
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}, pg_catalog, pg_temp").format(sql.Identifier(schema)))
        await conn.execute(bookkeeping)
        cursor = await conn.execute(migration_text("SELECT version FROM {schema}.schema_migrations", schema))
        done = {row["version"] for row in await cursor.fetchall()}
        _refuse_newer(schema, done, newest_known)
        for migration in migrations:
            if migration.version in done:
                continue
            await conn.execute(migration_text(migration.text, schema))
            await conn.execute(
                migration_text("INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, %s)", schema),
                (migration.version, migration.name),
            )
            log.info("applied migration", extra={"version": migration.version, "migration": migration.name, "schema": schema})
            applied_now.append(migration.version)
    return applied_now
