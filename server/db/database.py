"""The server's connection pool and the one way statements run on it.

Each capability store asks `Database.statements(package, file)` for its named statements and runs
them through the `Statements` it gets back; rows come back as dicts, jsonb columns as JSON text.
Driver errors become the server's errors in one place (driver_errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..core import errors
from .driver_errors import translate_database_errors
from .migrate import migrate
from .statements import load_statements, with_schema

Row = dict[str, Any]


@dataclass(frozen=True)
class PoolSettings:
    """How the server uses its connections."""

    min_size: int = 2
    max_size: int = 10
    # How long a call waits for a free connection before it is told the server is overloaded.
    acquire_timeout: float = 5.0


class _JsonbAsText(TextLoader):
    """Read jsonb as its text: it goes to the caller as JSON text, so parsing it would be waste."""


async def _configure_connection(conn: psycopg.AsyncConnection) -> None:
    conn.adapters.register_loader("jsonb", _JsonbAsText)


class Database:
    """One PostgreSQL schema, reached through a connection pool."""

    def __init__(self, database_url: str, schema: str, pool: PoolSettings | None = None) -> None:
        self.schema = schema
        self.database_url = database_url
        self._settings = pool or PoolSettings()
        self._pool = AsyncConnectionPool(
            database_url,
            min_size=self._settings.min_size,
            max_size=self._settings.max_size,
            timeout=self._settings.acquire_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure_connection,
            open=False,
            name="workflowstate",
        )
        self._own = self.statements("workflowstate.server.db", "database.sql")

    def statements(self, package: str, filename: str) -> Statements:
        """The named statements of a capability's .sql file, ready to run on this database."""
        return Statements(self, {name: with_schema(text, self.schema) for name, text in load_statements(package, filename).items()})

    async def open(self, *, timeout: float = 30.0) -> list[int]:
        """Connect and apply missing migrations; return the migrations applied now."""
        try:
            await self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as err:
            await self._pool.close()
            raise errors.Unavailable(f"could not connect to the database within {timeout:.0f}s: {err}") from err
        async with self._pool.connection() as conn:
            return await migrate(conn, self.schema)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection, with driver errors translated."""
        with translate_database_errors():
            async with self._pool.connection() as conn:
                yield conn

    async def ping(self) -> None:
        """One round trip to the database; raises Unavailable when it does not answer."""
        await self._own.fetch_one("ping", {})

    def pool_stats(self) -> dict[str, int]:
        """The connection pool's current numbers (psycopg_pool's get_stats)."""
        return self._pool.get_stats()

    async def check_idle_connections(self) -> None:
        """Drop pooled connections that died, so the next call gets a fresh one."""
        await self._pool.check()


class Statements:
    """A capability's named statements, bound to the database they run on."""

    def __init__(self, database: Database, texts: dict[str, str]) -> None:
        self._database = database
        self._texts = texts

    async def fetch_one(self, name: str, params: dict[str, Any]) -> Row | None:
        """Run the named statement; return its first row (None when it has none)."""
        async with self._database.connection() as conn:
            cursor = await conn.execute(self._texts[name], params)
            return await cursor.fetchone()

    async def fetch_all(self, name: str, params: dict[str, Any]) -> list[Row]:
        """Run the named statement; return all its rows."""
        async with self._database.connection() as conn:
            cursor = await conn.execute(self._texts[name], params)
            return await cursor.fetchall()


async def with_deadline(call: Awaitable[Any], seconds: float | None) -> Any:
    """Await a store call, giving up when the caller's deadline passes.

    Cancelling the await makes psycopg cancel the running statement, so nothing is left half
    done: a statement is one transaction, and a cancelled one is rolled back.
    """
    if seconds is None:
        return await call
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError:
        raise errors.DeadlineExceeded("the deadline passed before the database answered; the statement was cancelled") from None
