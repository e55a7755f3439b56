"""The server's connection pool, its health probe, and the one way statements run on the pool.

Each capability store asks `Database.statements(package, file)` for its named statements and takes
each as a `Query` (or a grouped statement) with its typed input (a dataclass, params.py) and its
typed row (a TypedDict of its columns); rows come back as dicts, jsonb columns as JSON text.
How one statement runs (deadlines, cancelled callers, fail-fast) is execution.py; driver errors
become the server's errors in one place (driver_errors.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import psycopg
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..core import errors
from .coalescer import GroupedStatement, GroupObserver, GroupSettings, ignore_group
from .driver_errors import first_line
from .execution import PooledConnection, StatementRunner, deadline_in
from .migrate import migrate
from .params import GroupInput, array_params, params_of
from .schema_name import check_schema_name
from .statements import load_statements, with_schema

Row = dict[str, Any]
In = TypeVar("In")
GIn = TypeVar("GIn", bound=GroupInput)
R = TypeVar("R")


@dataclass(frozen=True)
class PoolSettings:
    """How the server uses its connections."""

    min_size: int = 2
    max_size: int = 10
    # How long a call waits for a free connection before it is told the server is overloaded.
    acquire_timeout: float = 5.0


# While the database is away at startup, how often to look again.
STARTUP_RECHECK = 0.25


class _JsonbAsText(TextLoader):
    """Read jsonb as its text: it goes to the caller as JSON text, so parsing it would be waste."""


async def _configure_connection(conn: PooledConnection) -> None:
    conn.adapters.register_loader("jsonb", _JsonbAsText)


class Database:
    """One PostgreSQL schema, reached through a connection pool, and watched through a probe connection."""

    def __init__(self, database_url: str, schema: str, pool: PoolSettings | None = None, groups: GroupSettings | None = None) -> None:
        self.schema = check_schema_name(schema)
        self.database_url = database_url
        self._settings = pool or PoolSettings()
        self._pool = AsyncConnectionPool(
            database_url,
            connection_class=PooledConnection,  # so the pool's type says its rows are dicts (kwargs below)
            min_size=self._settings.min_size,
            max_size=self._settings.max_size,
            timeout=self._settings.acquire_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure_connection,
            open=False,
            name="workflowstate",
            # A connection attempt that fails is given up at once instead of retried with the pool's
            # backoff (1 s, 2 s, 4 s...): those waiting retries held the pool's slots after an
            # outage, so calls waited seconds after PostgreSQL was back. The pool grows again on
            # demand, and the probe below says when the database is back.
            reconnect_timeout=0.0,
            reconnect_failed=lambda _pool: self._runner.connect_failed(),
        )
        # Annotated: the pool's reconnect_failed above names it before it exists, which leaves the type checker guessing.
        self._runner: StatementRunner = StatementRunner(self._pool, max_size=self._settings.max_size, acquire_timeout=self._settings.acquire_timeout)
        self._groups = groups or GroupSettings()
        self._group_observer: GroupObserver = ignore_group
        self._ping = load_statements("workflowstate.server.db", "database.sql")["ping"]
        self._probe_connection: psycopg.AsyncConnection[Any] | None = None

    def statements(self, package: str, filename: str) -> Statements:
        """The named statements of a capability's .sql file, ready to run on this database."""
        texts = {name: with_schema(text, self.schema) for name, text in load_statements(package, filename).items()}
        return Statements(self._runner, texts, self._groups, lambda: self._group_observer)

    def observe_groups(self, observer: GroupObserver) -> None:
        """Call `observer(statement name, operations)` for each grouped statement run (coalescer.py)."""
        self._group_observer = observer

    async def open(self, *, timeout: float = 30.0) -> list[int]:
        """Wait (up to timeout) for the database, connect and apply missing migrations; return the
        migrations applied now."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout
        while True:
            try:
                await self._round_trip(max(ends - loop.time(), STARTUP_RECHECK))
                break
            except errors.Unavailable as err:
                if loop.time() + STARTUP_RECHECK > ends:
                    raise errors.Unavailable(f"could not connect to the database within {timeout:.0f}s: {err}") from err
                await asyncio.sleep(STARTUP_RECHECK)
        try:
            await self._pool.open(wait=True, timeout=max(ends - loop.time(), 1.0))
        except PoolTimeout as err:
            await self._pool.close()
            raise errors.Unavailable(f"could not connect to the database within {timeout:.0f}s: {err}") from err
        async with self._pool.connection() as conn:
            return await migrate(conn, self.schema)

    async def close(self) -> None:
        await self._close_probe()
        await self._runner.wait_background(timeout=5.0)
        await self._pool.close()

    def on_trouble(self, callback: Callable[[], None]) -> None:
        """Call `callback` when a statement meets signs of an outage (a dead connection, a failed
        connection attempt), so the probe looks at once."""
        self._runner.on_trouble = callback

    async def probe(self, timeout: float) -> None:
        """One round trip on the server's own probe connection; raises Unavailable.

        Not a pooled connection: with every pooled connection busy the database still answers, and
        the server is overloaded, not cut off. The outcome is recorded: while the database is known
        to be down calls fail at once; when it is back, the pool's connections (which died with it)
        are replaced before calls use them again."""
        try:
            await self._round_trip(timeout)
        except errors.Unavailable as err:
            self._runner.mark_down(str(err).removeprefix("the database cannot be reached: "))
            raise
        if self._runner.outage is not None:
            # Back: the idle pooled connections most likely died with it; check them all now
            # (once, not on every checkout) so that calls get live ones.
            await self._pool.check()
            self._runner.mark_up()

    async def _round_trip(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                if self._probe_connection is None or self._probe_connection.closed:
                    self._probe_connection = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
                await self._probe_connection.execute(self._ping)
        except (psycopg.Error, OSError, TimeoutError) as err:
            await self._close_probe()
            reason = f"no answer within {timeout:g}s" if isinstance(err, TimeoutError) else first_line(err)
            raise errors.Unavailable(f"the database cannot be reached: {reason}") from err

    async def _close_probe(self) -> None:
        connection, self._probe_connection = self._probe_connection, None
        if connection is not None:
            await connection.close()

    @property
    def pool_size(self) -> int:
        """The most connections the pool opens: how many statements can run at once."""
        return self._settings.max_size

    def pool_stats(self) -> dict[str, int]:
        """The connection pool's current numbers (psycopg_pool's get_stats)."""
        return self._pool.get_stats()


class Statements:
    """A capability's named statements, bound to the pool they run on."""

    def __init__(
        self, runner: StatementRunner, texts: dict[str, str], groups: GroupSettings, observer: Callable[[], GroupObserver]
    ) -> None:
        self._runner = runner
        self._texts = texts
        self._groups = groups
        self._observer = observer

    def grouped(self, name: str, input_type: type[GIn], row_type: type[R], **bound: Any) -> GroupedStatement[GIn, R]:
        """The named set-based statement, run for groups of concurrent operations (coalescer.py): its
        parameters are the arrays of its inputs' fields (params.py) and what the store binds for
        every input (`bound`); an input's `key` names the row it writes (one per group), its `size`
        its payload's bytes."""
        return GroupedStatement(
            self._runner,
            name,
            self._texts[name],
            input_type=input_type,
            row_type=row_type,
            params=functools.partial(array_params, input_type, **bound),
            key=_key_of,
            size=_size_of,
            settings=self._groups,
            observe=self._observer,
        )

    def query(self, name: str, input_type: type[In], row_type: type[R]) -> Query[In, R]:
        """The named statement, run once per call: its parameters are its input's fields (params.py)."""
        return Query(self._runner, name, self._texts[name], input_type, row_type)


def _key_of(item: GroupInput) -> Hashable:
    return item.key


def _size_of(item: GroupInput) -> int:
    return item.size


class Query(Generic[In, R]):
    """One named statement with its typed input and row: what a store runs, and what the statement
    tests read (its text, input type and row type)."""

    def __init__(self, runner: StatementRunner, name: str, text: str, input_type: type[In], row_type: type[R]) -> None:
        self.name = name
        self.input_type = input_type
        self.row_type = row_type
        self._runner = runner
        self._text = text

    async def one(self, item: In) -> R | None:
        """Run the statement; its first row (None when it has none)."""
        # The pool returns plain dicts; R is the TypedDict of the statement's columns, which the
        # store tier checks against what PostgreSQL describes for the prepared statement.
        return cast("R | None", await self._runner.run(self._text, params_of(item), many=False))

    async def all(self, item: In) -> list[R]:
        """Run the statement; all its rows."""
        return cast("list[R]", await self._runner.run(self._text, params_of(item), many=True))


async def with_deadline(call: Awaitable[Any], seconds: float | None) -> Any:
    """Await a store call within the caller's deadline (None: no deadline).

    Its statements give up a margin before the deadline and are cancelled in PostgreSQL; the call
    is answered DEADLINE_EXCEEDED only once PostgreSQL has confirmed the cancel, so nothing was
    written (execution.py says how, and why the margin).
    """
    if seconds is None:
        return await call
    with deadline_in(seconds):
        return await call
