"""One StreamStepTasks stream: a worker's subscription, credit, tasks in flight and heartbeats.

As in lease_session.py, everything that happens to the stream (a worker message, the end of its
messages, a wake-up because steps may be due, the heartbeat check, the server shutting down)
becomes an input in the session's inbox (streams.py), handled in order by one loop, which alone
changes the stream's state and writes to it. After each input, if the worker has credit and steps
may be due, the loop claims up to the credit in one statement and pushes the tasks (in one
StepTaskBatch to a worker that subscribed with bulk).

A worker's updates message (several acks, completes and fails) runs each update exactly as the
separate message (task_updates.py), and answers them all in one outcomes message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..dispatch.dispatcher import DispatchSettings, TaskDispatcher, start_to_close_timeout
from ..dispatch.reports import WorkerReports
from ..dispatch.store import TaskStore
from ..dispatch.workers import WorkerStream, WorkerStreams
from ..state.rows import ClaimedTaskRow, FinishedRunRow
from ..state.transitions import RunStatus, StepStatus
from . import caller, convert, task_updates, validation
from .status import STATUS_OF
from .streams import StreamSession

log = logging.getLogger("workflowstate.server.dispatch")

MAX_IN_FLIGHT = 1000
MAX_RPC_NAMES = 256
# The most bytes of tasks in one StepTaskBatch (as the proto says): a claim of large steps is
# pushed in several messages, each within what a client takes by default (4 MiB).
MAX_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StepsMayBeDue:
    """A NOTIFY, the poll timer or a step's due time: look for tasks to claim."""


@dataclass(frozen=True)
class RunsFinished:
    """These runs finished (None: any may have): tell the worker to cancel its tasks of them."""

    run_ids: frozenset[uuid.UUID] | None


@dataclass(frozen=True)
class TimedOut:
    """A task's start_to_close passed: tell its worker to stop (the sweeper fails the attempt)."""

    step_id: uuid.UUID
    attempt: int
    reason: str


@dataclass(frozen=True)
class HeartbeatDue:
    """The task lease since the last heartbeat is up: check the worker is still there."""


@dataclass(frozen=True)
class Subscription:
    worker_id: str
    rpc_names: list[str]
    max_in_flight: int
    task_lease: timedelta
    bulk: bool


class TaskSession(StreamSession[pb.StreamStepTasksRequest, pb.StreamStepTasksResponse]):
    """The server side of one worker's StreamStepTasks stream."""

    def __init__(
        self,
        context: grpc.aio.ServicerContext[pb.StreamStepTasksRequest, pb.StreamStepTasksResponse],
        *,
        dispatcher: TaskDispatcher,
        tasks: TaskStore,
        workers: WorkerStreams,
        reports: WorkerReports,
        settings: DispatchSettings,
        statement_concurrency: int,
        max_payload_bytes: int,
        on_dispatched: Callable[[int], None],
    ) -> None:
        """`dispatcher` wakes the stream, tells it of finished runs and of the server's shutdown, and
        cleans up after its end; `tasks` claims and adopts its tasks; `workers` lists it for ListWorkers
        and notes its heartbeats; `reports` decides its worker's acks, completes and fails. Each updates
        message runs up to `statement_concurrency` of its updates at once; `on_dispatched` counts the
        tasks handed out."""
        super().__init__(context, dispatcher)
        self._dispatcher = dispatcher
        self._tasks = tasks
        self._workers = workers
        self._reports = reports
        self._settings = settings
        self._statement_concurrency = statement_concurrency
        self._max_payload = max_payload_bytes
        self._on_dispatched = on_dispatched
        self._stream_id = uuid.uuid4()
        self._subscription: Subscription | None = None
        self._worker_stream: WorkerStream | None = None
        # Attempts pushed on this stream and not yet answered: step_id -> attempt number.
        self._in_flight: dict[uuid.UUID, int] = {}
        # The run of each step handed out here (kept a while after its answer; pruned on claims),
        # the attempts whose worker was told to cancel them, and whether a look for finished runs
        # failed (the database was away) and must be made again.
        self._run_of: dict[uuid.UUID, uuid.UUID] = {}
        self._cancel_sent: set[tuple[uuid.UUID, int]] = set()
        # A timer per task in flight with a start_to_close, to tell its worker when it times out.
        self._timeouts: dict[tuple[uuid.UUID, int], asyncio.TimerHandle] = {}
        self._finished_unchecked = False
        self._credit = 0
        self._draining = False
        # Whether due steps may be waiting; and whether the last claim used all the credit (so
        # more may be waiting once credit comes back).
        self._due = False
        self._last_claim_full = False
        self._wake_queued = False
        self._timer: asyncio.TimerHandle | None = None
        self._heartbeat_check: asyncio.TimerHandle | None = None
        self._last_heartbeat = 0.0
        self._shutting_down = False

    async def on_signal(self, signal: object) -> None:
        match signal:
            case StepsMayBeDue():
                self._wake_queued = False
                self._due = True
            case HeartbeatDue():
                self._check_heartbeat()
            case RunsFinished(run_ids):
                await self._cancel_tasks_of(run_ids)
            case TimedOut(step_id, attempt, reason):
                await self._cancel_timed_out(step_id, attempt, reason)

    async def on_shutdown(self) -> None:
        self._shutting_down = True
        raise errors.ShuttingDown(
            "the server is shutting down; reconnect to another server and name your tasks in flight in subscribe.running to keep them"
        )

    async def after_input(self) -> None:
        if self._finished_unchecked and self._due:  # at the poll interval at the latest
            await self._cancel_tasks_of(None)
        if self._subscription and self._credit > 0 and self._due and not self._draining:
            await self._claim()

    async def close(self, *, cancelled: bool) -> None:
        for timer in (self._timer, self._heartbeat_check, *self._timeouts.values()):
            if timer:
                timer.cancel()
        # Everything the end of the stream must do is started before anything is awaited: a
        # cancel arriving during an await (the worker is gone) must not skip the rest.
        ending: list[asyncio.Task[None]] = []
        if self._subscription:
            self._dispatcher.unregister(self._subscription.rpc_names, self._wake)
            self._dispatcher.unwatch_finished_runs(self._runs_finished)
            ending.append(self._dispatcher.forget_stream_in_background(self._stream_id, self._subscription.task_lease))
        if self._in_flight and not self._shutting_down:
            ending.append(self._fail_in_flight())
        if ending and not cancelled:
            # Awaited, so a worker whose stream the server ends hears of it after its attempts were failed.
            await asyncio.shield(asyncio.gather(*ending))

    def _fail_in_flight(self) -> asyncio.Task[None]:
        """A worker that leaves with tasks in flight has lost them. (Not so on a server shutdown:
        the worker reconnects elsewhere and its results still count until the task lease passes.)"""
        return self._fail_lost(list(self._in_flight.items()), "ended with the task in flight")

    def _fail_lost(self, attempts: list[tuple[uuid.UUID, int]], when: str) -> asyncio.Task[None]:
        """Fail attempts of this stream's gone worker, in a task of its own, which a cancel of this
        stream cannot interrupt."""
        assert self._subscription is not None
        why = f"the stream of worker {self._subscription.worker_id!r} {when}"
        return self._dispatcher.fail_lost_in_background(attempts, why, self._stream_id)

    def _runs_finished(self, run_ids: frozenset[uuid.UUID] | None) -> None:
        if self._in_flight:
            self.inbox.signal(RunsFinished(run_ids))

    def _wake(self) -> None:
        if not self._wake_queued:
            self._wake_queued = True
            self.inbox.signal(StepsMayBeDue())

    # Worker messages.

    async def on_message(self, request: pb.StreamStepTasksRequest) -> None:
        kind = request.WhichOneof("kind")
        if kind is None:
            raise errors.InvalidArgument(
                "a StreamStepTasksRequest must set one of subscribe, ack, heartbeat, complete, fail, credit, drain, updates",
                field=None,
            )
        if kind == "subscribe":
            await self._subscribe(request.subscribe)
            return
        if self._subscription is None:
            raise errors.FailedPrecondition(f"the first message of the stream must be subscribe, got {kind}")
        if kind == "heartbeat":
            await self._heartbeat()
        elif kind == "ack":
            await self._answer(self._ack(request.ack))
        elif kind == "complete":
            await self._answer(await self._complete(request.complete))
        elif kind == "fail":
            await self._answer(await self._fail(request.fail))
        elif kind == "updates":
            await self._updates(request.updates)
        elif kind == "credit":
            self._add_credit(request.credit.n)
        elif kind == "drain":
            self._draining = True
            await self.write(pb.StreamStepTasksResponse(drained=pb.StepTaskDrained()))

    async def _subscribe(self, subscribe: pb.StepTaskSubscribe) -> None:
        if self._subscription is not None:
            raise errors.FailedPrecondition("this stream is already subscribed; open another stream to subscribe again")
        worker_id = validation.check_name("subscribe.worker_id", subscribe.worker_id)
        if not subscribe.rpc_names:
            raise errors.InvalidArgument("subscribe.rpc_names must name at least one rpc", field="subscribe.rpc_names")
        if len(subscribe.rpc_names) > MAX_RPC_NAMES:
            raise errors.InvalidArgument(f"subscribe.rpc_names may name at most {MAX_RPC_NAMES} rpcs, got {len(subscribe.rpc_names)}", field="subscribe.rpc_names", limit=MAX_RPC_NAMES)
        rpc_names = sorted({validation.check_name("subscribe.rpc_names", name) for name in subscribe.rpc_names})
        if not 1 <= subscribe.max_in_flight <= MAX_IN_FLIGHT:
            raise errors.InvalidArgument(f"subscribe.max_in_flight must be 1 to {MAX_IN_FLIGHT}, got {subscribe.max_in_flight}", field="subscribe.max_in_flight", limit=MAX_IN_FLIGHT)
        task_lease = self._task_lease(subscribe)
        running = self._running_tasks(subscribe)
        credential = caller.credential()
        adopted = await self._tasks.adopt(
            running, worker_id=worker_id, stream_id=self._stream_id, task_lease=task_lease, credential=credential
        )
        self._subscription = Subscription(worker_id, rpc_names, subscribe.max_in_flight, task_lease, subscribe.bulk)
        self._worker_stream = WorkerStream(self._stream_id, worker_id, rpc_names, subscribe.max_in_flight, task_lease, credential)
        # Listed by ListWorkers from now until the stream ends (close deletes the row).
        await self._workers.connected(self._worker_stream, len(adopted))
        self._in_flight.update((step_id, attempt) for step_id, attempt, _ in adopted)
        self._run_of.update((step_id, run_id) for step_id, _, run_id in adopted)
        self._credit = subscribe.max_in_flight - len(adopted)
        self._due = True
        self._dispatcher.register(rpc_names, self._wake)
        self._dispatcher.watch_finished_runs(self._runs_finished)
        # An adopted task's run may have finished while the worker was away.
        self._finished_unchecked = bool(adopted)
        self._last_heartbeat = asyncio.get_running_loop().time()
        self._schedule_heartbeat_check()
        subscribed = pb.StepTaskSubscribed(
            task_lease=convert.duration(task_lease),
            adopted=[pb.StepTaskAck(step_id=str(step_id), attempt=attempt) for step_id, attempt, _ in adopted],
            bulk=True,
        )
        await self.write(pb.StreamStepTasksResponse(subscribed=subscribed))

    @staticmethod
    def _running_tasks(subscribe: pb.StepTaskSubscribe) -> list[tuple[uuid.UUID, int]]:
        if len(subscribe.running) > subscribe.max_in_flight:
            raise errors.InvalidArgument(
                f"subscribe.running names {len(subscribe.running)} tasks, more than max_in_flight {subscribe.max_in_flight}",
                field="subscribe.running", limit=subscribe.max_in_flight,
            )
        running = []
        for task in subscribe.running:
            step_id = validation.parse_uuid("subscribe.running.step_id", task.step_id)
            if task.attempt < 1:
                raise errors.InvalidArgument(f"subscribe.running.attempt must be 1 or more, got {task.attempt}", field="subscribe.running.attempt")
            running.append((step_id, task.attempt))
        return running

    def _task_lease(self, subscribe: pb.StepTaskSubscribe) -> timedelta:
        settings = self._settings
        if not subscribe.HasField("task_lease"):
            return settings.default_task_lease
        lease = convert.duration_from_proto("subscribe.task_lease", subscribe.task_lease)
        if lease <= timedelta(0) or lease > settings.max_task_lease:
            raise errors.InvalidArgument(f"subscribe.task_lease must be positive and at most {settings.max_task_lease}, got {lease}", field="subscribe.task_lease")
        return lease

    async def _heartbeat(self) -> None:
        assert self._worker_stream is not None
        self._last_heartbeat = asyncio.get_running_loop().time()
        # One statement moves the leases of the tasks in flight and notes the heartbeat for
        # ListWorkers. Without tasks, a failure (the database is away) costs the worker nothing:
        # its row is written again at a later heartbeat, so the stream goes on.
        try:
            await self._workers.heartbeat(self._worker_stream, list(self._in_flight))
        except errors.WorkflowStateError as err:
            if self._in_flight:
                raise
            log.debug("could not note a heartbeat", extra={"reason": str(err)})

    def _ack(self, ack: pb.StepTaskAck) -> pb.StepTaskOutcome | None:
        """None when the ack holds (it has no answer then)."""
        step_id = validation.parse_uuid("ack.step_id", ack.step_id)
        try:
            self._reports.ack(self._in_flight, step_id, ack.attempt)
        except errors.WorkflowStateError as err:
            return self._refused(ack.step_id, ack.attempt, err)
        return None

    async def _complete(self, complete: pb.StepTaskComplete) -> pb.StepTaskOutcome:
        try:
            step_id = validation.parse_uuid("complete.step_id", complete.step_id)
            attempt = self._attempt("complete.attempt", complete.attempt)
            result_json = validation.check_json("complete.result_json", complete.result_json, max_bytes=self._max_payload)
            status = await self._reports.complete(step_id, attempt, result_json, stream_id=self._stream_id)
        except errors.WorkflowStateError as err:
            return self._refused(complete.step_id, complete.attempt, err)
        self._in_flight.pop(step_id, None)
        return self._accepted(complete.step_id, attempt, status)

    async def _fail(self, fail: pb.StepTaskFail) -> pb.StepTaskOutcome:
        try:
            step_id = validation.parse_uuid("fail.step_id", fail.step_id)
            attempt = self._attempt("fail.attempt", fail.attempt)
            if not fail.HasField("error"):
                raise errors.InvalidArgument("fail.error is required", field="fail.error")
            error = fail.error
            validation.check_failure("fail.error", error.message, error.stack, error.code, max_bytes=self._max_payload)
            failure = convert.failure_from_proto(error)
            status = await self._reports.fail(step_id, attempt, failure, retryable=fail.retryable, stream_id=self._stream_id)
        except errors.WorkflowStateError as err:
            return self._refused(fail.step_id, fail.attempt, err)
        self._in_flight.pop(step_id, None)
        return self._accepted(fail.step_id, attempt, status)

    async def _updates(self, updates: pb.StepTaskUpdates) -> None:
        """Each update as the separate message would run; one message answers them all."""
        task_updates.check(updates)
        outcomes = await task_updates.run(
            updates, self._update, concurrency=self._statement_concurrency
        )
        answered = [outcome for outcome in outcomes if outcome is not None]
        if answered:
            await self.write(pb.StreamStepTasksResponse(outcomes=pb.StepTaskOutcomes(outcomes=answered)))

    async def _update(self, update: pb.StepTaskUpdate) -> pb.StepTaskOutcome | None:
        kind = update.WhichOneof("kind")
        if kind == "complete":
            return await self._complete(update.complete)
        if kind == "fail":
            return await self._fail(update.fail)
        return self._ack(update.ack)

    @staticmethod
    def _attempt(field: str, attempt: int) -> int:
        if attempt < 1:
            raise errors.InvalidArgument(f"{field} must be 1 or more, got {attempt}", field=field)
        return attempt

    def _fail_orphaned_claim(self, claiming: asyncio.Future[list[ClaimedTaskRow]]) -> None:
        if claiming.cancelled() or claiming.exception() is not None:
            return  # nothing committed (or the database said so); nothing to fail
        attempts = [(row["step_id"], row["attempt_count"]) for row in claiming.result()]
        if attempts:
            self._fail_lost(attempts, "ended while its tasks were being claimed")

    def _add_credit(self, n: int) -> None:
        assert self._subscription is not None
        if n <= 0:
            raise errors.InvalidArgument(f"credit.n must be positive, got {n}", field="credit.n")
        limit = self._subscription.max_in_flight
        if self._credit + len(self._in_flight) + n > limit:
            raise errors.FailedPrecondition(
                f"credit {n} would exceed max_in_flight {limit}: {len(self._in_flight)} tasks in flight, {self._credit} credit left"
            )
        self._credit += n
        if self._last_claim_full:
            self._due = True

    # Dispatch.

    async def _claim(self) -> None:
        subscription = self._subscription
        assert subscription is not None
        self._due = False
        limit = self._credit
        claiming = asyncio.ensure_future(
            self._tasks.claim(
                subscription.rpc_names, limit, worker_id=subscription.worker_id, stream_id=self._stream_id, task_lease=subscription.task_lease
            )
        )
        try:
            rows = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # The worker went away while the claim ran: it may have committed attempts this stream
            # will never hand out. They are this stream's, so they are failed as its stream's end
            # fails the others, once the claim says which (not left RUNNING for the sweeper).
            claiming.add_done_callback(self._fail_orphaned_claim)
            raise
        self._on_dispatched(len(rows))
        # Every claimed attempt is this stream's before any is written: if a write fails part-way
        # (the worker is gone), the stream's end fails the unwritten ones too, not the sweeper later.
        self._forget_answered()
        for row in rows:
            self._in_flight[row["step_id"]] = row["attempt_count"]
            self._run_of[row["step_id"]] = row["run_id"]
            self._credit -= 1
            if row["task_timeout_time"] is not None:
                self._watch_timeout(row, row["task_timeout_time"])
        tasks = [convert.task_to_proto(row) for row in rows]
        if subscription.bulk:
            for batch in _batches(tasks, MAX_BATCH_BYTES):
                await self.write(pb.StreamStepTasksResponse(tasks=pb.StepTaskBatch(tasks=batch)))
        else:
            for task in tasks:
                await self.write(pb.StreamStepTasksResponse(task=task))
        self._last_claim_full = len(rows) == limit
        if not self._last_claim_full:
            due = await self._tasks.next_due(subscription.rpc_names)
            self._schedule_wake(due)

    # Cancels.

    async def _cancel_tasks_of(self, run_ids: frozenset[uuid.UUID] | None) -> None:
        """Send a cancel for each task in flight of these runs (None: of any run) that finished,
        once per attempt. The task stays in flight until the worker's report is refused."""
        held: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = {}
        for step_id, attempt in self._in_flight.items():
            run_id = self._run_of.get(step_id)
            if run_id is not None and (run_ids is None or run_id in run_ids) and (step_id, attempt) not in self._cancel_sent:
                held.setdefault(run_id, []).append((step_id, attempt))
        self._finished_unchecked = False
        if not held:
            return
        try:
            finished = await self._tasks.finished_runs(list(held))
        except errors.WorkflowStateError as err:
            log.warning("could not look which runs of tasks in flight finished; looking again soon", extra={"reason": str(err)})
            self._finished_unchecked = True
            return
        for row in finished:
            reason = _cancel_reason(row)
            for step_id, attempt in held[row["run_id"]]:
                if self._in_flight.get(step_id) != attempt:
                    continue  # answered while the statement ran
                self._cancel_sent.add((step_id, attempt))
                cancel = pb.StepTaskCancel(step_id=str(step_id), attempt=attempt, run_id=str(row["run_id"]), reason=reason)
                await self.write(pb.StreamStepTasksResponse(cancel=cancel))

    def _forget_answered(self) -> None:
        """Drop what is kept of tasks no longer in flight, once it outgrows them (bounded memory)."""
        if len(self._run_of) > 2 * len(self._in_flight) + 64:
            self._run_of = {step_id: self._run_of[step_id] for step_id in self._in_flight if step_id in self._run_of}
            self._cancel_sent = {key for key in self._cancel_sent if self._in_flight.get(key[0]) == key[1]}
        if len(self._timeouts) > 2 * len(self._in_flight) + 64:
            for key, timer in list(self._timeouts.items()):
                if self._in_flight.get(key[0]) != key[1]:
                    timer.cancel()
                    del self._timeouts[key]

    # Timeouts: the sweeper (on any server) fails an attempt past its start_to_close; its stream
    # tells the worker at that moment, with a cancel, so the handler can stop. Only a courtesy:
    # the decision and the failure are the database's.

    def _watch_timeout(self, row: ClaimedTaskRow, timeout_time: datetime) -> None:
        """Tell the worker of `row` when its attempt passes `timeout_time` (its task_timeout_time)."""
        key = (row["step_id"], row["attempt_count"])
        delay = max(0.0, (timeout_time - datetime.now(timezone.utc)).total_seconds())
        reason = start_to_close_timeout(timeout_time - row["running_time"]).message
        signal = TimedOut(key[0], key[1], reason)
        self._timeouts[key] = asyncio.get_running_loop().call_later(delay, self.inbox.signal, signal)

    async def _cancel_timed_out(self, step_id: uuid.UUID, attempt: int, reason: str) -> None:
        self._timeouts.pop((step_id, attempt), None)
        if self._in_flight.get(step_id) != attempt or (step_id, attempt) in self._cancel_sent:
            return
        self._cancel_sent.add((step_id, attempt))
        run_id = self._run_of.get(step_id)
        cancel = pb.StepTaskCancel(step_id=str(step_id), attempt=attempt, run_id=str(run_id or ""), reason=reason)
        await self.write(pb.StreamStepTasksResponse(cancel=cancel))

    def _schedule_wake(self, due: datetime | None) -> None:
        """Look again when the next step falls due, and at most a poll interval from now."""
        pause = self._settings.poll_interval
        if due is not None:
            pause = min(pause, max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + 0.002)
        if self._timer:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(pause, self._wake)

    # Heartbeats.

    def _schedule_heartbeat_check(self) -> None:
        assert self._subscription is not None
        when = self._last_heartbeat + self._subscription.task_lease.total_seconds()
        self._heartbeat_check = asyncio.get_running_loop().call_at(when, self.inbox.signal, HeartbeatDue())

    def _check_heartbeat(self) -> None:
        assert self._subscription is not None
        lease = self._subscription.task_lease
        if asyncio.get_running_loop().time() - self._last_heartbeat >= lease.total_seconds():
            raise errors.DeadlineExceeded(
                f"worker {self._subscription.worker_id!r} sent no heartbeat within its task lease of {lease}; "
                "its tasks in flight were failed as lost"
            )
        self._schedule_heartbeat_check()

    # Answers.

    async def _answer(self, outcome: pb.StepTaskOutcome | None) -> None:
        """Write the answer to an ack, complete or fail sent alone: accepted or refused."""
        if outcome is None:
            return
        if outcome.HasField("accepted"):
            await self.write(pb.StreamStepTasksResponse(accepted=outcome.accepted))
        else:
            await self.write(pb.StreamStepTasksResponse(refused=outcome.refused))

    @staticmethod
    def _accepted(step_id: str, attempt: int, status: StepStatus) -> pb.StepTaskOutcome:
        accepted = pb.StepTaskAccepted(step_id=step_id, attempt=attempt, status=convert.STEP_STATUS_TO_PROTO[status])
        return pb.StepTaskOutcome(accepted=accepted)

    def _refused(self, step_id: str, attempt: int, err: errors.WorkflowStateError) -> pb.StepTaskOutcome:
        code = STATUS_OF[type(err)]
        if isinstance(err, (errors.FailedPrecondition, errors.NotFound)):
            # The attempt is over, whoever ended it: this stream no longer runs it.
            with contextlib.suppress(ValueError):
                if self._in_flight.get(uuid.UUID(step_id)) == attempt:
                    del self._in_flight[uuid.UUID(step_id)]
        refused = pb.StepTaskRefused(
            step_id=step_id, attempt=attempt, code=code.value[0], message=str(err), reason=err.reason, metadata=err.metadata
        )
        return pb.StepTaskOutcome(refused=refused)


def _cancel_reason(run: FinishedRunRow) -> str:
    """What a worker is told of why its task's run finished: a cancel's reason, or the run's status."""
    status = RunStatus(run["status"])
    if status is RunStatus.CANCELLED and isinstance(run["error"], str):
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(run["error"]).get("message")) or "cancelled"
    return f"the run is {status.name}"


def _batches(tasks: list[pb.StepTask], max_bytes: int) -> list[list[pb.StepTask]]:
    """The tasks in order, cut into runs of at most max_bytes (a larger task alone)."""
    batches: list[list[pb.StepTask]] = []
    size = 0
    for task in tasks:
        task_size = task.ByteSize()
        if not batches or size + task_size > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(task)
        size += task_size
    return batches

