"""Remote mode, server-wide: wake the worker streams when steps are scheduled, and fail the
attempts of workers that were lost without a word.

Each worker stream (task_session.py) claims its own tasks; this module tells it when to look:
on a NOTIFY naming one of its rpc names (sent by the trigger function announce_scheduled_step on any server),
and at every poll interval as a fallback. A sweeper fails handed-out attempts whose task lease
passed in the database: the worker stopped heartbeating, or the server it was connected to died.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from ..core import errors
from ..core.cleanups import RetriedCleanups
from ..core.shutdown import ShutdownNotifier
from ..core.supervisor import Supervisor
from ..db.database import Database
from ..db.notifications import Notifications, finished_runs_channel, tasks_channel
from ..state.store import FailureRecord
from ..state.transitions import Via
from .defaults import DefaultsStore
from .store import ExpiredTask, TaskStore
from .workers import WorkerStreams

log = logging.getLogger("workflowstate.server.dispatch")

WORKER_LOST = "worker lost"


def worker_lost(why: str) -> FailureRecord:
    """The error an attempt fails with when its worker is gone."""
    return FailureRecord(f"{WORKER_LOST}: {why}", code="WORKER_LOST")


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g}s"


def start_to_close_timeout(start_to_close: timedelta) -> FailureRecord:
    """The error an attempt fails with when it runs past its start_to_close."""
    return FailureRecord(f"timed out: the attempt ran longer than its start_to_close of {_seconds(start_to_close)}", code="START_TO_CLOSE_TIMEOUT")


def schedule_to_start_timeout(schedule_to_start: timedelta) -> FailureRecord:
    """The error a scheduled step fails with when no worker claimed it in time."""
    return FailureRecord(
        f"timed out: no worker claimed the step within its schedule_to_start of {_seconds(schedule_to_start)}",
        code="SCHEDULE_TO_START_TIMEOUT",
    )


@dataclass(frozen=True)
class DispatchSettings:
    """How remote mode behaves on this server."""

    # The task lease of a worker that does not name one, and the longest it may name.
    default_task_lease: timedelta = timedelta(seconds=30)
    max_task_lease: timedelta = timedelta(minutes=10)
    # The longest a worker stream waits before looking for due steps unwoken, and the period of
    # the sweeper that fails attempts whose task lease passed.
    poll_interval: float = 1.0


class TaskDispatcher(ShutdownNotifier):
    """All worker streams of one server process: what wakes them, what they hear of finished runs,
    their shutdown, and the cleanup of their ends and of lost workers (the sweeper)."""

    def __init__(
        self,
        database: Database,
        tasks: TaskStore,
        workers: WorkerStreams,
        settings: DispatchSettings,
        notifications: Notifications,
        *,
        on_lost: Callable[[int], None] = lambda count: None,
        supervisor: Supervisor | None = None,
    ) -> None:
        super().__init__()
        self._on_lost = on_lost
        self._tasks = tasks
        # The stores of the dispatch RPCs that are not a stream's (ListWorkers; the dispatch defaults).
        self.workers = workers
        self.defaults = DefaultsStore(database)
        self._settings = settings
        self._wakers: dict[str, set[Callable[[], None]]] = {}
        # Every stream's callback for runs that finished (None: any run may have, look at all).
        self._finished_listeners: set[Callable[[frozenset[uuid.UUID] | None], None]] = set()
        self._supervisor = supervisor or Supervisor()
        self._sweeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.cleanups = RetriedCleanups("worker-stream-cleanup", retry_interval=settings.poll_interval, supervisor=self._supervisor, log=log)
        notifications.subscribe(tasks_channel(database.schema), self.wake_rpc, self._wake_all)
        notifications.subscribe(finished_runs_channel(database.schema), self._run_finished_notice, self._any_run_may_have_finished)

    def start(self) -> None:
        self._sweeper = self._supervisor.start("task-sweeper", self._sweep_forever)
        self.cleanups.start()

    async def stop(self, timeout: float = 5.0) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        self.cleanups.cancel()
        pending = [task for task in (self._sweeper, *self._background, *self.cleanups.tasks()) if task]
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=timeout)
            if stuck:
                log.warning("dispatch tasks did not finish in time; stopping without them", extra={"tasks": len(stuck)})

    async def fail_lost(self, attempts: list[tuple[uuid.UUID, int]], why: str, stream_id: uuid.UUID | None = None) -> None:
        """Fail the attempts of a worker that is gone, retrying those with retries left; log
        instead of raising when the database is away (the sweeper then fails them later).
        With `stream_id`, only those that stream still holds (not those a reconnected worker
        adopted on another stream meanwhile)."""
        try:
            outcomes = await self._tasks.fail(attempts, worker_lost(why), retryable=True, stream_id=stream_id)
        except errors.WorkflowStateError as err:
            log.warning("could not fail the tasks of a lost worker; the sweeper will", extra={"reason": str(err)})
            return
        failed = sum(1 for outcome in outcomes if outcome.new_status)
        self._on_lost(failed)
        log.info("failed the attempts of a lost worker", extra={"attempts": failed, "why": why})

    def fail_lost_in_background(
        self, attempts: list[tuple[uuid.UUID, int]], why: str, stream_id: uuid.UUID | None = None
    ) -> asyncio.Task[None]:
        """fail_lost in a task of its own, which the stop of the server waits for."""
        task = asyncio.create_task(self.fail_lost(attempts, why, stream_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def forget_stream_in_background(self, stream_id: uuid.UUID, task_lease: timedelta) -> asyncio.Task[None]:
        """Delete an ended stream's row in a task of its own (a cancelled stream may not wait for
        it), which the stop of the server waits for. When the database is away, retried until it
        is done, so ListWorkers stops showing the stream once the database is back; past the task
        lease (and a poll interval for a heartbeat in flight) the row counts as gone anyway."""
        moot_after = task_lease.total_seconds() + self._settings.poll_interval
        work = functools.partial(self.workers.disconnected, stream_id)
        return self.cleanups.run(("worker-stream", stream_id), "worker stream removal", work, moot_after=moot_after)

    # Streams register how to wake them for each rpc name they serve.

    def register(self, rpc_names: list[str], wake: Callable[[], None]) -> None:
        for name in rpc_names:
            self._wakers.setdefault(name, set()).add(wake)

    def unregister(self, rpc_names: list[str], wake: Callable[[], None]) -> None:
        for name in rpc_names:
            wakers = self._wakers.get(name)
            if wakers is not None:
                wakers.discard(wake)
                if not wakers:
                    del self._wakers[name]

    def wake_rpc(self, rpc_name: str) -> None:
        """Wake the streams serving ``rpc_name``: a step of it may be due (a NOTIFY, or a step
        scheduled through this server). A wake that finds nothing costs one empty claim."""
        for wake in list(self._wakers.get(rpc_name, ())):
            wake()

    def _wake_all(self) -> None:
        for wakers in list(self._wakers.values()):
            for wake in list(wakers):
                wake()

    # Runs finished while workers hold attempts of them (a cancel): every stream holding one tells
    # its worker. Heard through the NOTIFY of announce_finished_run from any server, and at once in-process
    # from this server's own cancels (runs_finished); a stream that hears twice tells its worker once.

    def watch_finished_runs(self, listener: Callable[[frozenset[uuid.UUID] | None], None]) -> None:
        self._finished_listeners.add(listener)

    def unwatch_finished_runs(self, listener: Callable[[frozenset[uuid.UUID] | None], None]) -> None:
        self._finished_listeners.discard(listener)

    def runs_finished(self, run_ids: frozenset[uuid.UUID] | None) -> None:
        """These runs finished (None: any may have, after missed notifications): tell every stream."""
        for listener in list(self._finished_listeners):
            listener(run_ids)

    def _run_finished_notice(self, payload: str) -> None:
        try:
            run_id = uuid.UUID(payload)
        except ValueError:
            log.warning("ignoring a finished-run notification without a run id", extra={"payload": payload[:64]})
            return
        self.runs_finished(frozenset((run_id,)))

    def _any_run_may_have_finished(self) -> None:
        self.runs_finished(None)

    # The sweeper.

    async def sweep(self) -> int:
        """Fail every attempt whose task lease passed or that ran past its start_to_close (the
        retry policy applies), and every scheduled attempt nobody claimed within its
        schedule_to_start; return how many were failed."""
        failed = 0
        while True:
            expired = await self._tasks.expired()
            if not expired:
                break
            lost = [(task.step_id, task.attempt) for task in expired if task.timeout is None]
            outcomes = await self._tasks.fail(lost, worker_lost("no heartbeat from its worker within the task lease"), retryable=True)
            done = sum(1 for outcome in outcomes if outcome.new_status is not None)
            self._on_lost(done)
            if done:
                log.warning("failed attempts of lost workers", extra={"attempts": done})
            timed_out = await self._fail_timed_out([task for task in expired if task.timeout is not None], start_to_close_timeout, Via.TASK_FAIL)
            failed += done + timed_out
            if len(expired) < 100 or not done + timed_out:
                break
        while True:
            waiting = await self._tasks.start_timeouts()
            done = await self._fail_timed_out(waiting, schedule_to_start_timeout, Via.START_TIMEOUT)
            failed += done
            if len(waiting) < 100 or not done:
                return failed

    async def _fail_timed_out(self, tasks: list[ExpiredTask], error: Callable[[timedelta], FailureRecord], via: Via) -> int:
        """Fail attempts that timed out, one statement per distinct timeout (its error names it)."""
        by_timeout: dict[timedelta, list[tuple[uuid.UUID, int]]] = {}
        for task in tasks:
            assert task.timeout is not None
            by_timeout.setdefault(task.timeout, []).append((task.step_id, task.attempt))
        done = 0
        for timeout, attempts in by_timeout.items():
            outcomes = await self._tasks.fail(attempts, error(timeout), retryable=True, via=via)
            done += sum(1 for outcome in outcomes if outcome.new_status is not None)
        if done:
            log.info("failed attempts that timed out", extra={"attempts": done, "via": via.value})
        return done

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.poll_interval)
            try:
                await self.sweep()
                await self.workers.sweep()
            except errors.WorkflowStateError as err:
                log.warning("could not sweep expired tasks", extra={"reason": str(err)})


__all__ = ["WORKER_LOST", "DispatchSettings", "TaskDispatcher"]
