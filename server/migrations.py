"""Create and upgrade the schema at start-up with numbered migrations.

Several server processes may start at once against one database: each takes the same
transaction-scoped advisory lock before looking at the schema, so exactly one applies a missing
migration and the others then find it applied. A migration and its bookkeeping row commit together.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from .queries import load_migrations, with_schema

log = logging.getLogger("workflowstate.server.migrations")

# Two int4 keys: a constant naming this purpose, then the schema's hash, so servers that use
# different schemas of one database do not wait for each other. A collision only serialises
# two start-ups; it cannot corrupt anything.
_LOCK_PURPOSE = 0x57534D47  # "WSMG"


async def migrate(conn: psycopg.AsyncConnection, schema: str) -> list[int]:
    """Apply the migrations the schema lacks; return the versions applied now."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_PURPOSE, schema))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute(
            with_schema(
                "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_time timestamptz NOT NULL DEFAULT now())",
                schema,
            )
        )
        cursor = await conn.execute(with_schema("SELECT version FROM {schema}.schema_migrations", schema))
        done = {row["version"] for row in await cursor.fetchall()}
        for migration in load_migrations():
            if migration.version in done:
                continue
            await conn.execute(with_schema(migration.text, schema))
            await conn.execute(
                with_schema("INSERT INTO {schema}.schema_migrations (version, name) VALUES (%s, %s)", schema),
                (migration.version, migration.name),
            )
            log.info("applied migration", extra={"version": migration.version, "migration": migration.name, "schema": schema})
            applied_now.append(migration.version)
        newest_known = max((m.version for m in load_migrations()), default=0)
        if done and max(done) > newest_known:
            raise RuntimeError(
                f"schema {schema!r} is at migration {max(done)}, newer than this server knows ({newest_known}); "
                "upgrade the server"
            )
    return applied_now
