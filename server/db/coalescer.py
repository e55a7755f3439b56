"""Group commit: concurrent operations of one kind share one set-based statement and one commit.

A grouped statement takes its inputs as arrays and returns one row per input, carrying the input's
`ordinal` (1-based, `unnest ... WITH ORDINALITY`). The same statement serves one operation and many.

How groups form: an operation that arrives while fewer than `max_in_flight` statements of its kind
run goes at the end of the event loop's current turn (no timer: no added latency when idle), with
the operations of its kind that arrived in the same turn (a Batch's, or the calls gRPC read
together); operations arriving while the statements run wait, and form the next group as soon as
one ends. A group is bounded in operations and bytes, and
holds at most one operation per row (its key), and no row a running group of this server holds: a
second operation on a row waits until the group holding it has ended, so every outcome is one the
operations run one after another would give, and no group of this server waits for another's lock.

What a caller is told, and when:
- Its own row's answer, once the group's statement has committed (the pool's connections are in
  autocommit, so the statement's end is its commit). Nothing is answered before.
- Rows a group cannot lock at once (the statement says `SKIP LOCKED`, or asks `NOT %(alone)s` where a
  lock is taken by a function, and returns no row for such an input): those operations leave the
  group and run alone, in the same statement without `SKIP LOCKED` and with `alone` true, so they
  wait for the lock and are cancelled at their deadline as any statement is. No operation waits in
  a group for another caller's row lock.
- A member's give-up time passing while its group runs: the group's statement is cancelled in
  PostgreSQL as any statement is (execution.py), so nothing of it was written; the members whose
  time has passed are answered DEADLINE_EXCEEDED, the others are run again in the next group.
- An error of the statement (a constraint, a value PostgreSQL refuses) may come from one input: the
  members are run again one by one, so the error reaches the operation that caused it alone.
- The database unreachable, the pool exhausted, or the connection lost under the statement: every
  member gets that answer, which says what it says for one statement ("nothing was written", or
  "outcome unknown" when the connection died after the statement went out).

One caller's list of inputs (a stream's end failing its attempts, the sweeper) is not a group of
callers: `run_each` runs the same statement once for the whole list, then each input it skipped
(a row locked elsewhere) alone, waiting, so none is left out.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from ..core import errors
from .execution import StatementRunner, _give_up_at

Row = dict[str, Any]
In = TypeVar("In")
# A statement's typed row (a TypedDict of its columns: see the stores' rows.py).
R = TypeVar("R")

# What a grouped statement says to skip the rows it cannot lock at once; run alone, it waits for them.
_SKIP_LOCKED = re.compile(r"\s+SKIP LOCKED\b")

# Tries of an operation run alone that still got no row (its row went away between the statement's
# look and its lock): the next statement sees the row's new state.
ALONE_TRIES = 3


@dataclass(frozen=True)
class GroupSettings:
    """How operations are grouped."""

    # Most operations in one statement.
    max_operations: int = 64
    # Most bytes of payload in one statement (an operation larger than that runs alone).
    max_bytes: int = 1024 * 1024
    # Statements of one kind running at once; operations arriving while they all run form the next group.
    max_in_flight: int = 2
    # Tests only: hold operations until this many of a kind wait (or hold_seconds passed since the
    # first), so that groups form for certain. 1: never hold.
    hold_for: int = 1
    hold_seconds: float = 0.1


GroupObserver = Callable[[str, int], None]


def ignore_group(statement: str, size: int) -> None:
    """The default when no one counts groups."""


class _Member(Generic[In]):
    """One operation waiting for its row."""

    __slots__ = ("item", "key", "size", "give_up_at", "future", "timer", "task", "companions")

    def __init__(self, item: In, key: Hashable, size: int, give_up_at: float | None, future: asyncio.Future[Row | None]) -> None:
        self.item = item
        self.key = key
        self.size = size
        self.give_up_at = give_up_at
        self.future = future
        self.timer: asyncio.TimerHandle | None = None
        # The task running the member's statement, and the members it runs (the member among them).
        self.task: asyncio.Task[None] | None = None
        self.companions: list[_Member[In]] = []

    def answer(self, row: Row | None) -> None:
        if not self.future.done():
            self.future.set_result(row)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def expired(self, now: float) -> bool:
        return self.give_up_at is not None and self.give_up_at <= now


def _copy(error: BaseException) -> BaseException:
    """The same error for another member (an exception object is raised in one place only)."""
    if isinstance(error, errors.WorkflowStateError):
        return error.copy()
    return error


class GroupedStatement(Generic[In, R]):
    """One named set-based statement, and the operations waiting to run in it: inputs of
    `input_type` in, rows of `row_type` out."""

    def __init__(
        self,
        runner: StatementRunner,
        name: str,
        text: str,
        *,
        input_type: type[In],
        row_type: type[R],
        params: Callable[[Sequence[In]], dict[str, Any]],
        key: Callable[[In], Hashable],
        size: Callable[[In], int],
        settings: GroupSettings,
        observe: Callable[[], GroupObserver],
    ) -> None:
        self.name = name
        self.input_type = input_type
        self.row_type = row_type
        self._runner = runner
        self._text = text
        self._alone_text = _SKIP_LOCKED.sub("", text)
        self._params = params
        self._key = key
        self._size = size
        self._settings = settings
        self._observe = observe
        self._pending: deque[_Member[In]] = deque()
        self._in_flight = 0
        # The keys the running groups hold: an operation on one of them waits for the next group.
        self._busy_keys: set[Hashable] = set()
        self._hold_timer: asyncio.TimerHandle | None = None
        self._hold_over = False
        # A start is scheduled at the end of this loop turn, for the operations arriving in it.
        self._start_soon = False
        # Running groups, and operations running alone (which hold no group's place: they may wait for a lock).
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, item: In) -> R | None:
        """The row of `item`'s own input, once the statement holding it has committed."""
        if self._runner.outage is not None:
            raise errors.Unavailable(f"the database cannot be reached ({self._runner.outage}); nothing was written")
        loop = asyncio.get_running_loop()
        member = _Member(item, self._key(item), self._size(item), _give_up_at.get(), loop.create_future())
        self._pending.append(member)
        if member.give_up_at is not None:
            member.timer = loop.call_at(member.give_up_at, self._expire_waiting, member)
        if not self._start_soon:
            self._start_soon = True
            loop.call_soon(self._start_this_turns)
        try:
            return cast("R | None", await member.future)
        except asyncio.CancelledError:
            # The caller went away: it leaves a group not formed yet; a running statement goes on for
            # the others, and is cancelled (in PostgreSQL too: execution.py) once no caller waits for it.
            self._leave(member)
            if member.task is not None and all(other.future.done() for other in member.companions):
                member.task.cancel()
            raise

    async def run_each(self, items: Sequence[In]) -> list[R]:
        """The rows of one caller's many inputs (a sweep, a stream's end: not callers each waiting on
        its row), in their order: one statement for all of them, then those whose row another
        transaction had locked alone, each waiting for its lock as any statement does. Not grouped
        with other callers' operations."""
        if not items:
            return []
        if self._runner.outage is not None:
            raise errors.Unavailable(f"the database cannot be reached ({self._runner.outage}); nothing was written")
        self._observe()(self.name, len(items))
        rows = await self._runner.run(self._text, {**self._params(items), "alone": False}, many=True, generic_plan=True)
        by_ordinal = {row["ordinal"]: row for row in rows}
        return [cast(R, by_ordinal.get(ordinal) or await self._alone_row(item)) for ordinal, item in enumerate(items, start=1)]

    def _leave(self, member: _Member[In]) -> None:
        if member.timer is not None:
            member.timer.cancel()
        try:
            self._pending.remove(member)
        except ValueError:
            pass

    def _expire_waiting(self, member: _Member[In]) -> None:
        """A member's give-up time came before a group took it: nothing was written."""
        if member in self._pending:
            self._pending.remove(member)
            member.fail(errors.DeadlineExceeded("the deadline was about to pass before the statement could start; nothing was written"))

    def _start_this_turns(self) -> None:
        self._start_soon = False
        self._start_groups()

    def _start_groups(self) -> None:
        settings = self._settings
        while self._pending and self._in_flight < settings.max_in_flight:
            if len(self._pending) < settings.hold_for and not self._hold_over:
                if self._hold_timer is None:
                    self._hold_timer = asyncio.get_running_loop().call_later(settings.hold_seconds, self._end_hold)
                return
            if self._hold_timer is not None:
                self._hold_timer.cancel()
                self._hold_timer = None
            group = self._take_group()
            if not group:
                return  # every waiting operation's row is in a running group: the next group starts when one ends
            self._in_flight += 1
            keys = {member.key for member in group}
            self._busy_keys |= keys
            self._spawn(self._run_group(group), group, in_flight=True, keys=keys)
            # Those left waiting (a second operation on a row in the group) go next, unheld.
            self._hold_over = bool(self._pending)

    def _end_hold(self) -> None:
        """The hold is over for the operations waiting now: they go as a group whatever its size."""
        self._hold_timer = None
        self._hold_over = True
        self._start_groups()

    def _spawn(self, work: Any, members: list[_Member[In]], *, in_flight: bool, keys: set[Hashable] | None = None) -> None:
        task = asyncio.get_running_loop().create_task(work)
        for member in members:
            member.task, member.companions = task, members
        self._tasks.add(task)
        if in_flight:
            task.add_done_callback(lambda ended: self._group_ended(ended, keys or set()))
        else:
            task.add_done_callback(self._tasks.discard)

    def _group_ended(self, task: asyncio.Task[None], keys: set[Hashable]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        self._busy_keys -= keys
        self._start_groups()

    def _take_group(self) -> list[_Member[In]]:
        """The next group: waiting members in arrival order, one per key, within the bounds."""
        group: list[_Member[In]] = []
        keys: set[Hashable] = set()
        size = 0
        left: deque[_Member[In]] = deque()
        while self._pending:
            member = self._pending.popleft()
            full = len(group) >= self._settings.max_operations or (group and size + member.size > self._settings.max_bytes)
            if full or member.key in keys or member.key in self._busy_keys:
                left.append(member)
                if full:
                    break
                continue
            group.append(member)
            keys.add(member.key)
            size += member.size
            if member.timer is not None:
                member.timer.cancel()
        left.extend(self._pending)
        self._pending = left
        return group

    async def _run_group(self, group: list[_Member[In]]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        live = []
        for member in group:
            if member.future.done():
                continue  # its caller went away before the group formed
            if member.expired(now):
                member.fail(errors.DeadlineExceeded("the deadline was about to pass before the statement could start; nothing was written"))
            else:
                live.append(member)
        if not live:
            return
        deadlines = [member.give_up_at for member in live if member.give_up_at is not None]
        _give_up_at.set(min(deadlines) if deadlines else None)  # this task's own context
        self._observe()(self.name, len(live))
        try:
            rows = await self._runner.run(self._text, {**self._params([member.item for member in live]), "alone": False}, many=True, generic_plan=True)
        except errors.DeadlineExceeded as err:
            self._after_deadline(live, err, loop.time())
            return
        except (errors.Unavailable, errors.Overloaded) as err:
            for member in live:
                member.fail(_copy(err))
            return
        except Exception as err:  # noqa: BLE001 - it may be one input's: run each alone to find whose
            if len(live) == 1:
                live[0].fail(err)
            else:
                for member in live:
                    self._spawn(self._run_alone(member), [member], in_flight=False)
            return
        by_ordinal = {row["ordinal"]: row for row in rows}
        skipped = []
        for ordinal, member in enumerate(live, start=1):
            row = by_ordinal.get(ordinal)
            if row is None:
                skipped.append(member)
            else:
                member.answer(row)
        for member in skipped:
            self._spawn(self._run_alone(member), [member], in_flight=False)

    def _after_deadline(self, live: list[_Member[In]], err: errors.DeadlineExceeded, now: float) -> None:
        """The statement was cancelled and rolled back: answer the members whose time passed; the
        others go again, first in line."""
        expired = [member for member in live if member.expired(now)]
        if not expired:
            # Cancelled by something else than a member's deadline (PostgreSQL's own timeout, an
            # operator): every member would have been told the same alone.
            for member in live:
                member.fail(_copy(err))
            return
        for member in expired:
            member.fail(_copy(err))
        again = [member for member in live if not member.expired(now) and not member.future.done()]
        self._pending.extendleft(reversed(again))
        self._hold_over = True  # they were held once already
        loop = asyncio.get_running_loop()
        for member in again:
            if member.give_up_at is not None:
                member.timer = loop.call_at(member.give_up_at, self._expire_waiting, member)

    async def _run_alone(self, member: _Member[In]) -> None:
        """One operation in a statement of its own, waiting for its row's lock as any statement does."""
        if member.future.done():
            return
        _give_up_at.set(member.give_up_at)
        try:
            member.answer(await self._alone_row(member.item))
        except Exception as err:  # noqa: BLE001 - the operation's own answer
            member.fail(err)

    async def _alone_row(self, item: In) -> Row:
        """`item`'s row from the statement run for it alone, waiting for its row's lock."""
        for _ in range(ALONE_TRIES):
            self._observe()(self.name, 1)
            rows = await self._runner.run(self._alone_text, {**self._params([item]), "alone": True}, many=True, generic_plan=True)
            if rows:
                row: Row = rows[0]
                return row
        raise errors.Aborted("a concurrent change conflicted with this one; nothing was written, retry it")


__all__ = ["GroupObserver", "GroupSettings", "GroupedStatement", "ignore_group"]
