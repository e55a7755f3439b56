"""The database the bench runs on: the one given, or an embedded PostgreSQL in a temporary folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import psycopg
from psycopg import sql


def embedded_database() -> contextlib.AbstractContextManager[str]:
    """Start an embedded PostgreSQL with its data in a new temporary folder; delete it all afterwards."""
    from workflowstate.server.ops.embedded import temporary_postgres

    return temporary_postgres(prefix="bench-pg-")


async def server_version(database_url: str) -> str:
    """PostgreSQL's version, up to the compiler: "PostgreSQL 18.6 on x86_64-pc-linux-gnu"."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute("SELECT version()")).fetchone()
    assert row is not None
    return str(row[0]).split(",")[0]


async def drop_schemas(database_url: str, schemas: Iterable[str]) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for schema in schemas:
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
