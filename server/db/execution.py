"""One statement's run on a pooled connection: answered by the caller's deadline, and an error
answer only once PostgreSQL has said the statement is over.

Each statement runs in a task of its own, which the caller's cancellation never reaches. gRPC
cancels a handler when its deadline passes or its client goes away; had that reached psycopg while
the statement waited (on a row lock, say), psycopg would have sent PostgreSQL a cancel request and
waited for the backend, and a second cancellation (the server's own timeout and gRPC's came
together) cut that wait short: psycopg closed the connection, the backend never noticed, and it
committed the write once the lock came free, after the caller was told DEADLINE_EXCEEDED.

So the caller only stops waiting:
- At `give_up_at` (a margin before the caller's deadline, see MAX_MARGIN) the statement is cancelled
  in PostgreSQL and the call is answered by what PostgreSQL says next: QueryCanceled (rolled back:
  DEADLINE_EXCEEDED, nothing written) or the statement's own result (it had committed: success).
- A caller that goes away leaves its statement to end in the background, through psycopg's own
  cancel, which nothing interrupts there; the connection goes back to the pool only afterwards.
- While the database is known to be down (the health probe says so) calls fail at once, and calls
  waiting for a connection are released with UNAVAILABLE instead of waiting out the pool timeout.

The normal path costs one task and no round trip: no check query on checkout (a pooled connection
whose server went away is noticed by reading its socket, without waiting), no per-call SET.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal, overload

import psycopg
import psycopg.errors
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..core import errors
from .driver_errors import first_line, outcome_unknown, translate_database_errors

log = logging.getLogger("workflowstate.server.db")

# The plan mode each pooled connection's session is in (absent: PostgreSQL's default, auto).
# The set-based statements run with generic plans: PostgreSQL otherwise plans them anew on every
# call (their custom plan looks cheaper for the few rows of each call), and planning one costs
# more than running it (set_step_status: about 0.7 ms of PostgreSQL CPU to plan, 0.4 to run).
# Every other statement keeps the default, which plans optional filters (`x IS NULL OR ...`) with
# the values given. A connection is switched only when the next statement wants the other mode.
_generic_plans: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], bool] = weakref.WeakKeyDictionary()
_PLAN_MODE = {True: "SET plan_cache_mode = force_generic_plan", False: "RESET plan_cache_mode"}

# How long before the caller's deadline the server stops waiting for its statement and cancels it
# in PostgreSQL. The margin holds the cancel request (a new connection to PostgreSQL: a few ms on
# loopback), the backend's rollback, and the answer's way back to the client, which must arrive
# before the client's own deadline fires: the client would then report DEADLINE_EXCEEDED by its own
# clock for a statement the server had not yet seen end. 200 ms leaves room for a loaded machine;
# a short deadline keeps a fifth of its time instead.
MAX_MARGIN = 0.2
MARGIN_SHARE = 0.2

# When the current call's statements give up (event loop time); None: the caller set no deadline.
_give_up_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("workflowstate_give_up_at", default=None)


@contextlib.contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Statements run in the block give up a margin before `seconds` from now."""
    now = asyncio.get_running_loop().time()
    token = _give_up_at.set(now + seconds - min(MAX_MARGIN, max(seconds, 0.0) * MARGIN_SHARE))
    try:
        yield
    finally:
        _give_up_at.reset(token)


def _settle(waiting: asyncio.Future[None], *_: Any) -> None:
    if not waiting.done():
        waiting.set_result(None)


def _still_connected(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle pooled connection still has its server, without a round trip.

    When PostgreSQL restarts, each backend writes a last error and closes its socket; reading
    what is already there (non-blocking) turns such a connection BAD, so it is replaced before a
    statement is sent on it and fails."""
    try:
        conn.pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    return not conn.closed


PooledConnection = psycopg.AsyncConnection[DictRow]
"""A connection of the server's pool: autocommit, rows as dicts."""


class StatementRunner:
    """Runs statements on the pool; knows whether the database is known to be down."""

    def __init__(self, pool: AsyncConnectionPool[PooledConnection], *, max_size: int, acquire_timeout: float) -> None:
        self.pool = pool
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        # Why the database is known to be down (the health probe's last failure); None while it answers.
        self.outage: str | None = None
        # Connection attempts the pool gave up on: a wait for a connection during which one failed
        # met an unreachable database, not a busy pool.
        self.connect_failures = 0
        self.on_trouble: Callable[[], None] = lambda: None
        self._waiting: set[_StatementRun] = set()
        self._background: set[asyncio.Task[Any]] = set()

    @overload
    async def run(self, sql: str, params: dict[str, Any], *, many: Literal[True], generic_plan: bool = False) -> list[DictRow]: ...
    @overload
    async def run(self, sql: str, params: dict[str, Any], *, many: Literal[False], generic_plan: bool = False) -> DictRow | None: ...
    async def run(self, sql: str, params: dict[str, Any], *, many: bool, generic_plan: bool = False) -> Any:
        """The statement's rows (``many``) or its one row (``None`` for none), run on a connection of the pool."""
        if self.outage is not None:
            raise errors.Unavailable(f"the database cannot be reached ({self.outage}); nothing was written")
        loop = asyncio.get_running_loop()
        statement = _StatementRun(self, sql, params, many, _give_up_at.get(), generic_plan)
        task = statement.task = loop.create_task(statement.main())
        # The caller waits on a future of its own, settled when the statement ends or it is time to
        # give up: the caller's cancellation cancels that future, never the statement's task. (What
        # asyncio.wait with a timeout does, in fewer steps: this is every call's path.)
        waiting = loop.create_future()
        task.add_done_callback(functools.partial(_settle, waiting))
        timer = None if statement.give_up_at is None else loop.call_at(statement.give_up_at, _settle, waiting)
        try:
            await waiting
            if not task.done():
                await statement.cancel_until_ended()
            return task.result()
        except asyncio.CancelledError:
            if not task.done():
                self._leave_to_background(statement)
            elif not task.cancelled():
                task.exception()  # ended as its caller went away: the answer goes nowhere, mark it read
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def mark_down(self, reason: str) -> None:
        """The database is known to be down: fail calls at once, release those waiting for a connection."""
        newly = self.outage is None
        self.outage = reason
        if newly:
            for statement in list(self._waiting):
                statement.release_for_outage(reason)

    def mark_up(self) -> None:
        self.outage = None

    def connect_failed(self) -> None:
        self.connect_failures += 1
        self.on_trouble()

    async def wait_background(self, timeout: float) -> None:
        """Let the statements of callers that went away end (at stop)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)

    def _leave_to_background(self, statement: _StatementRun) -> None:
        statement.abandoned = True
        # Cancelled only while it waits for a connection or runs on one (psycopg then cancels it in
        # PostgreSQL and waits for the backend); once it is handing its connection back, never.
        if statement.conn is not None or statement in self._waiting:
            statement.task.cancel()
        self._background.add(statement.task)
        statement.task.add_done_callback(self._background_ended)

    def _background_ended(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        error = None if task.cancelled() else task.exception()
        outcome = "cancelled" if task.cancelled() else first_line(error) if error is not None else "completed"
        log.debug("statement of a call whose caller went away ended", extra={"outcome": outcome})


class _StatementRun:
    """One statement from the wait for a connection to the connection's return."""

    def __init__(
        self, runner: StatementRunner, sql: str, params: dict[str, Any], many: bool, give_up_at: float | None, generic_plan: bool
    ) -> None:
        self.runner = runner
        self.sql = sql
        self.params = params
        self.many = many
        self.generic_plan = generic_plan
        self.give_up_at = give_up_at
        self.task: asyncio.Task[Any]
        # The connection while the statement may be running on it (None before and after).
        self.conn: PooledConnection | None = None
        self.cancels_sent = 0
        self.abandoned = False
        self._outage: str | None = None

    async def main(self) -> Any:
        with translate_database_errors():
            conn = await self._acquire()
            self.conn = conn
            settled = False  # no cancel request of ours can still reach this backend
            try:
                if _generic_plans.get(conn, False) != self.generic_plan:
                    await conn.execute(_PLAN_MODE[self.generic_plan])
                    _generic_plans[conn] = self.generic_plan
                cursor = await conn.execute(self.sql, self.params)
                settled = self.cancels_sent == 0
                return await (cursor.fetchall() if self.many else cursor.fetchone())
            except psycopg.errors.QueryCanceled as err:
                # Our one request cancelled it, so none is left on its way.
                settled = self.cancels_sent == 1 and not self.abandoned
                if self.cancels_sent:
                    raise errors.DeadlineExceeded(
                        "the deadline was about to pass while the statement ran (waiting for a lock, say); "
                        "PostgreSQL cancelled it and rolled it back, so nothing was written"
                    ) from err
                raise
            except psycopg.OperationalError as err:
                if conn.closed:
                    raise outcome_unknown(err) from err
                settled = self.cancels_sent == 0
                raise
            finally:
                self.conn = None
                if not settled:
                    # A cancel request may still be on its way to this backend: reused, the
                    # connection could have the next caller's statement cancelled.
                    await conn.close()
                await self.runner.pool.putconn(conn)

    async def _acquire(self) -> PooledConnection:
        runner, loop = self.runner, asyncio.get_running_loop()
        timeout, deadline_first = runner.acquire_timeout, False
        if self.give_up_at is not None and self.give_up_at - loop.time() < timeout:
            timeout, deadline_first = self.give_up_at - loop.time(), True
        if timeout <= 0:
            raise errors.DeadlineExceeded("the deadline was about to pass before the statement could start; nothing was written")
        ends, failures_before = loop.time() + timeout, runner.connect_failures
        runner._waiting.add(self)
        try:
            while True:
                conn = await runner.pool.getconn(timeout=max(ends - loop.time(), 0.0))
                if _still_connected(conn):
                    return conn
                # Closed by its server (a restart): the pool replaces it; the probe should look.
                # Shielded: a cancellation must not lose the pool its count of connections.
                await asyncio.shield(runner.pool.putconn(conn))
                runner.on_trouble()
        except PoolTimeout:
            raise self._no_connection(timeout, deadline_first, failures_before) from None
        except asyncio.CancelledError:
            if self._outage is None:
                raise
            self.task.uncancel()
            raise errors.Unavailable(f"the database cannot be reached ({self._outage}); nothing was written") from None
        finally:
            runner._waiting.discard(self)

    def _no_connection(self, waited: float, deadline_first: bool, failures_before: int) -> errors.WorkflowStateError:
        runner = self.runner
        if runner.outage is not None or runner.connect_failures != failures_before:
            runner.on_trouble()
            return errors.Unavailable("the database cannot be reached: the pool could not open a connection to it; nothing was written")
        if deadline_first:
            return errors.DeadlineExceeded(
                f"the deadline was about to pass while the call waited for a database connection "
                f"(all {runner.max_size} were busy); nothing was written"
            )
        return errors.Overloaded(
            f"the server is overloaded: all {runner.max_size} database connections are busy and none came free "
            f"within {waited:g}s; nothing was written, retry later or with fewer concurrent calls"
        )

    def release_for_outage(self, reason: str) -> None:
        """Stop waiting for a connection: the database is known to be down."""
        self._outage = reason
        self.task.cancel()

    async def cancel_until_ended(self) -> None:
        """Cancel the statement in PostgreSQL until it has ended, one way or the other.

        A cancel request that reaches the backend before the statement does is ignored there,
        hence the repeats (at a growing interval)."""
        pause = 0.05
        while not self.task.done():
            conn = self.conn
            if conn is not None:
                self.cancels_sent += 1
                try:
                    await conn.cancel_safe(timeout=2.0)
                except (psycopg.Error, OSError) as err:
                    log.debug("could not send a cancel request", extra={"reason": first_line(err)})
            await asyncio.wait((self.task,), timeout=pause)
            pause = min(pause * 2, 1.0)
