"""The worker's side of the StreamStepTasks stream, without I/O, shared by Worker and AsyncWorker.

``WorkerProtocol`` decides everything: the messages that open a stream, what a
response means, which report (complete or fail) a handler's outcome becomes,
when credit may be given back, when a heartbeat is due, when a report must be
sent again and when a stopping worker is done. The drivers (``_worker_sync``
with threads, ``_worker_async`` with tasks) open streams, run handlers, send
what it builds, hand it every response and wake it when it asks. It is not
thread-safe; the sync driver calls it under a lock.

Two rules of the server shape it:

- Credit plus tasks in flight may never exceed ``max_in_flight`` on a stream,
  and the server counts a task out of flight only once it accepted (or
  refused as over) its report. So credit for a task is given back when the
  answer arrives, never with the report itself: a report refused as invalid
  keeps its task in flight, and credit sent with it would end the stream.
- A task survives its stream: the next stream's subscribe names the tasks
  still running and those whose report is unanswered, and the server adopts
  those still running at that attempt (they count in flight on the new stream,
  and its heartbeats keep them). Unanswered reports are sent again right after
  the subscribe. The attempt number fences them, so a report the server already
  recorded is refused (or, for the same result, accepted again) and never
  written twice.

Several per message: the worker subscribes with ``bulk``, so the server pushes
the tasks of one claim in one message; and once the server said it takes
updates (``subscribed.bulk``), reports queued together (handlers that finished
in the same loop turn, or while the previous message was being sent) go in one
updates message, answered by one outcomes message (see :func:`merge_requests`).
A lone report is sent alone, as before: nothing waits for company.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio

from workflowstate import v1 as pb

from ._convert import duration_to_proto, encode_json, failure_to_proto, step_task_from_proto
from ._errors import error_from_rpc
from ._reconnect import Backoff, OutageLog, ReconnectPolicy
from ._types import StepTask, UndecodableJson

log = logging.getLogger("workflowstate.client.worker")

HEARTBEATS_PER_LEASE = 3
"""Heartbeats sent per task lease: at a third of it, one can be slow or lost and the next is in time."""

RESEND_AFTER = 1.0
"""Seconds before a report the server could not store (refused UNAVAILABLE) is sent again."""

MAX_IN_FLIGHT = 1000
"""The server's limit of ``max_in_flight``."""

_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_HEARTBEAT = pb.StreamStepTasksRequest(heartbeat=pb.StepTaskHeartbeat())
_DRAIN = pb.StreamStepTasksRequest(drain=pb.StepTaskDrain())

MAX_UPDATES = 1000
"""The server's limit of updates in one message."""

MAX_UPDATES_BYTES = 1024 * 1024
"""The most bytes of reports merged into one updates message: well within the server's receive
limit (4 times its payload limit, 1 MiB by default), whatever the results' sizes."""

_REPORT_KINDS = frozenset({"ack", "complete", "fail"})

RESUBSCRIBE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""The codes of a stream's end after which the worker subscribes again: the server went away,
or it lost this worker (no heartbeat in time, e.g. a long pause of the whole process)."""

RECONNECT_POLICY = ReconnectPolicy(give_up_after=None)
"""A worker never gives up reconnecting: it is stopped by its owner."""

CANCEL_WAIT = 5.0
"""How long ``stop()`` waits for ``run()`` to return once it cancelled the stream."""

TaskKey = tuple[str, int]
"""A task's step_id and attempt number: what the server's answers name."""


class NonRetryableError(Exception):
    """Raise it (or a subclass) in a handler to fail the step at once, even with retries left.

    Any other exception fails the attempt as retryable: the server schedules
    the next attempt after the step's retry_delay while retries remain.
    """


class TaskCancelled(NonRetryableError):
    """What an async handler cancelled by a server's cancel is reported as (the server refuses it:
    the run is over; the report only frees the task's slot). A sync handler may raise it too."""


RUNNING_WHILE_AWAY = "its running tasks go on, and their results are sent once the server is back"
"""What a worker does while the server is away (its outage warning says it): the tasks stay its own
until their task lease passes, and the next stream claims them back."""

def resubscribe_delay(error: grpc.RpcError | None, backoff: Backoff, outage: OutageLog, lasted: float) -> float:
    """After a stream ended (with ``error``, or OK) and the worker is not stopping: the seconds before the next.

    Raises the client's error when the end says the server refused the worker.
    """
    if isinstance(error, (grpc.Call, grpc.aio.AioRpcError)):
        code, details = error.code(), error.details() or ""
    else:
        code, details = grpc.StatusCode.OK, "the server ended the stream"
    if error is not None and code not in RESUBSCRIBE_CODES:
        raise error_from_rpc(error) from error
    delay = backoff.failed(lasted) or 0.0
    outage.failed(code, details, delay)
    return delay


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker subscribes with: the arguments of ``Worker``."""

    worker_id: str
    """Names the worker for operators; steps show it while it runs them."""

    rpc_names: tuple[str, ...]
    """The functions the worker runs: its handlers' keys."""

    max_in_flight: int
    """The most tasks handed to the worker at once."""

    task_lease: timedelta
    """How long a task stays the worker's without a message from it."""

    def __post_init__(self) -> None:
        # Refused here, before any stream: the server would refuse them too,
        # but as an error out of run() instead of at construction.
        if not self.rpc_names:
            raise ValueError("a worker needs at least one handler")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"max_in_flight must be 1 to {MAX_IN_FLIGHT}, got {self.max_in_flight}")
        if self.task_lease <= timedelta(0):
            raise ValueError(f"task_lease must be positive, got {self.task_lease}")

    def subscribe_request(self, held: list[TaskKey]) -> pb.StreamStepTasksRequest:
        """The first message of each stream, naming the tasks the worker still holds."""
        return pb.StreamStepTasksRequest(
            subscribe=pb.StepTaskSubscribe(
                worker_id=self.worker_id,
                rpc_names=list(self.rpc_names),
                max_in_flight=self.max_in_flight,
                task_lease=duration_to_proto(self.task_lease),
                running=[pb.StepTaskAck(step_id=step_id, attempt=attempt) for step_id, attempt in held[: self.max_in_flight]],
                bulk=True,
            )
        )


@dataclass
class _Report:
    """A complete or fail not yet answered by the server."""

    request: pb.StreamStepTasksRequest
    resend_at: float | None = None
    """When to send it again after an UNAVAILABLE refusal; ``None`` while it is sent."""
    reduced: bool = False
    """Already the smaller report sent after an INVALID_ARGUMENT refusal."""


class WorkerProtocol:
    """The state of one worker across its streams, from its first subscribe to its stop."""

    def __init__(
        self,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.monotonic,
        on_cancel: Callable[[StepTask], None] = lambda task: None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        # Told of each running task the server cancels, after its ``cancelled`` is set.
        self._on_cancel = on_cancel
        self._tasks: dict[TaskKey, StepTask] = {}
        self._connected = False
        self._interval = settings.task_lease.total_seconds() / HEARTBEATS_PER_LEASE
        self._next_heartbeat = 0.0
        self._running: set[TaskKey] = set()
        # Tasks pushed on the current stream whose report the server has not answered yet:
        # the tasks it counts in flight, whose answers give credit back.
        self._on_stream: set[TaskKey] = set()
        self._reports: dict[TaskKey, _Report] = {}
        self._drained = False

        self.server_bulk = False
        """Whether the current stream's server takes updates (several reports in one message)."""

        self.stopping = False
        """True once :meth:`stop` was called: no more tasks are wanted."""

    @property
    def running(self) -> int:
        """How many handlers run now (tasks received and not yet finished)."""
        return len(self._running)

    @property
    def done(self) -> bool:
        """True once a stopping worker has nothing left to do on its stream: half-close it.

        Handlers have finished, and the server said it pushes no more tasks and
        answered every report; or there is no stream, and its results cannot
        be delivered (the server fails those attempts once their task lease
        passes; each step is retried while it has retries left).
        """
        if not self.stopping or self._running:
            return False
        return not self._connected or (self._drained and not self._reports)

    # --- the stream ------------------------------------------------------------

    def connect(self) -> list[pb.StreamStepTasksRequest]:
        """A new stream opens: the subscribe, then every report not answered yet."""
        self._connected = True
        self._drained = False
        self.server_bulk = False  # until this stream's subscribed says so
        self._on_stream.clear()
        self._next_heartbeat = self._clock() + self._interval
        # Tasks still running or unanswered: the server adopts those still running at their attempt.
        held = sorted(self._running | set(self._reports))
        messages = [self.settings.subscribe_request(held)]
        for report in self._reports.values():
            report.resend_at = None
            messages.append(report.request)
        if self._reports:
            log.info("sending %d reports kept from an earlier stream", len(self._reports))
        if self.stopping:
            messages.append(_DRAIN)
        return messages

    def disconnected(self) -> None:
        """The stream ended: its tasks are no longer counted by any server stream."""
        self._connected = False
        self.server_bulk = False
        self._on_stream.clear()

    def on_response(
        self, response: pb.StreamStepTasksResponse
    ) -> tuple[list[StepTask], list[pb.StreamStepTasksRequest]]:
        """Read one response: the tasks to run (often none), and the messages to send."""
        kind = response.WhichOneof("kind")
        if kind in ("task", "tasks"):
            received = [self._received(task) for task in ([response.task] if kind == "task" else response.tasks.tasks)]
            return self._runnable(received)
        if kind == "accepted":
            return [], _credit(self._accepted(response.accepted))
        if kind == "refused":
            freed, messages = self._refused(response.refused)
            return [], messages + _credit(freed)
        if kind == "outcomes":
            freed, messages = 0, []
            for outcome in response.outcomes.outcomes:
                if outcome.HasField("accepted"):
                    freed += self._accepted(outcome.accepted)
                elif outcome.HasField("refused"):
                    refused_freed, refused_messages = self._refused(outcome.refused)
                    freed += refused_freed
                    messages += refused_messages
            return [], messages + _credit(freed)
        if kind == "subscribed":
            self.server_bulk = response.subscribed.bulk
            # Adopted tasks count in flight on this stream: their answers give credit back.
            self._on_stream.update((task.step_id, task.attempt) for task in response.subscribed.adopted)
            lease = response.subscribed.task_lease.ToTimedelta()
            if lease > timedelta(0):
                self._interval = lease.total_seconds() / HEARTBEATS_PER_LEASE
                self._next_heartbeat = min(self._next_heartbeat, self._clock() + self._interval)
            log.info(
                "worker %s subscribed to %s (max_in_flight %d, task lease %s)",
                self.settings.worker_id,
                ", ".join(self.settings.rpc_names),
                self.settings.max_in_flight,
                lease,
            )
        elif kind == "drained":
            self._drained = True
        elif kind == "cancel":
            self._cancelled(response.cancel)
        else:
            log.warning("ignoring a StreamStepTasks response this client does not know: %s", kind)
        return [], []

    def _received(self, proto: pb.StepTask) -> StepTask:
        task = step_task_from_proto(proto)
        key = (task.step_id, task.attempt)
        self._running.add(key)
        self._on_stream.add(key)
        self._tasks[key] = task
        log.debug("got step %s (%s) attempt %d", task.step_name, task.rpc_name, task.attempt)
        return task

    def _runnable(self, tasks: list[StepTask]) -> tuple[list[StepTask], list[pb.StreamStepTasksRequest]]:
        """The tasks whose handlers may run, and the fails of those whose data cannot be decoded.

        Such a task is failed for good without running its handler: every attempt would get the same
        data. Only that task fails; the worker goes on serving the others."""
        runnable, messages = [], []
        for task in tasks:
            if isinstance(task.data, UndecodableJson):
                messages += self.failed(task, NonRetryableError(f"{task.data}; the step failed without running its handler"))
            else:
                runnable.append(task)
        return runnable, messages

    def _cancelled(self, cancel: pb.StepTaskCancel) -> None:
        """The server asks to stop a task: its run is over. Its handler still reports (refused),
        which frees its slot on the server."""
        task = self._tasks.get((cancel.step_id, cancel.attempt))
        if task is None:
            return  # finished already: its report is on its way, and will be refused
        log.info("step %s (%s) attempt %d cancelled by the server: %s", task.step_name, task.rpc_name, task.attempt, cancel.reason)
        task.cancelled.cancel(cancel.reason)
        self._on_cancel(task)

    def _accepted(self, accepted: pb.StepTaskAccepted) -> int:
        key = (accepted.step_id, accepted.attempt)
        self._reports.pop(key, None)
        return self._answered(key)

    def _answered(self, key: TaskKey) -> int:
        """The server no longer counts ``key`` in flight: 1 when its slot may take a new task."""
        if key not in self._on_stream:
            return 0
        self._on_stream.discard(key)
        return 0 if self.stopping else 1

    def _refused(self, refused: pb.StepTaskRefused) -> tuple[int, list[pb.StreamStepTasksRequest]]:
        """The credit a refusal frees (0 or 1), and the messages it calls for."""
        key = (refused.step_id, refused.attempt)
        code = _STATUS_BY_NUMBER.get(refused.code, grpc.StatusCode.UNKNOWN)
        report = self._reports.get(key)
        if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
            # The attempt is over (lost, or reported already): nothing was written.
            self._reports.pop(key, None)
            log.warning("the report of step %s attempt %d was refused: %s", key[0], key[1], _refusal_text(refused))
            return self._answered(key), []
        if code is grpc.StatusCode.UNAVAILABLE and report is not None:
            report.resend_at = self._clock() + RESEND_AFTER
            log.info("the server could not store the report of step %s attempt %d; sending it again", *key)
            return 0, []
        if code is grpc.StatusCode.INVALID_ARGUMENT and report is not None and not report.reduced:
            # The task stays in flight on the server: fail it with what it will store.
            smaller = _reduced(report.request, refused.message)
            self._reports[key] = _Report(smaller, reduced=True)
            log.warning("the report of step %s attempt %d was refused (%s); failing it instead", key[0], key[1], _refusal_text(refused))
            return 0, [smaller]
        self._reports.pop(key, None)
        log.error("the report of step %s attempt %d was refused (%s): %s", key[0], key[1], code.name, _refusal_text(refused))
        return 0, []

    # --- handlers --------------------------------------------------------------

    def succeeded(self, task: StepTask, result: Any) -> list[pb.StreamStepTasksRequest]:
        """A handler returned ``result``: the complete to send (kept until answered)."""
        try:
            result_json = encode_json(result)
        except (TypeError, ValueError) as exc:
            return self.failed(task, exc)
        complete = pb.StepTaskComplete(step_id=task.step_id, attempt=task.attempt, result_json=result_json)
        return self._report(task, pb.StreamStepTasksRequest(complete=complete))

    def failed(self, task: StepTask, exc: BaseException) -> list[pb.StreamStepTasksRequest]:
        """A handler raised ``exc``: the fail to send (kept until answered)."""
        retryable = not isinstance(exc, NonRetryableError)
        log.warning(
            "step %s (%s) attempt %d failed%s: %r",
            task.step_name,
            task.rpc_name,
            task.attempt,
            "" if retryable else " for good",
            exc,
        )
        fail = pb.StepTaskFail(
            step_id=task.step_id, attempt=task.attempt, error=failure_to_proto(exc), retryable=retryable
        )
        return self._report(task, pb.StreamStepTasksRequest(fail=fail))

    def _report(self, task: StepTask, request: pb.StreamStepTasksRequest) -> list[pb.StreamStepTasksRequest]:
        key = (task.step_id, task.attempt)
        self._running.discard(key)
        self._tasks.pop(key, None)
        self._reports[key] = _Report(request)
        return [request] if self._connected else []

    # --- time ------------------------------------------------------------------

    def tick(self) -> list[pb.StreamStepTasksRequest]:
        """Called when :meth:`seconds_to_next_tick` has passed: the heartbeat and resends due."""
        if not self._connected:
            return []
        now = self._clock()
        messages = []
        if now >= self._next_heartbeat:
            messages.append(_HEARTBEAT)
            self._next_heartbeat = now + self._interval
        for report in self._reports.values():
            if report.resend_at is not None and report.resend_at <= now:
                report.resend_at = None
                messages.append(report.request)
        return messages

    def seconds_to_next_tick(self) -> float | None:
        """How long the driver may sleep before calling :meth:`tick`; ``None``: until woken."""
        if not self._connected:
            return None
        due = [self._next_heartbeat]
        due.extend(r.resend_at for r in self._reports.values() if r.resend_at is not None)
        return max(0.0, min(due) - self._clock())

    # --- stopping --------------------------------------------------------------

    def stop(self) -> list[pb.StreamStepTasksRequest]:
        """Stop taking tasks: the drain to send (nothing when stopping already or not connected)."""
        if self.stopping:
            return []
        self.stopping = True
        log.info("worker %s stopping: %d tasks running", self.settings.worker_id, len(self._running))
        return [_DRAIN] if self._connected else []

    def stream_abandoned(self) -> None:
        """The worker gave up waiting on its handlers (stop's timeout): log what is lost."""
        if self._running or self._reports:
            log.warning(
                "worker %s stopped with %d tasks still running and %d results not yet confirmed by the server; "
                "the server fails each of those attempts it holds no result for as lost ('worker lost'): "
                "a step with retries left is tried again after its retry delay, a step with no retries left fails",
                self.settings.worker_id,
                len(self._running),
                len(self._reports),
            )


def merge_requests(requests: Iterable[pb.StreamStepTasksRequest], *, bulk: bool) -> list[pb.StreamStepTasksRequest]:
    """The messages queued together, in fewer messages: each run of consecutive credits as one, and
    (``bulk``: the server takes updates) each run of consecutive reports as one updates message, of
    at most MAX_UPDATES reports and MAX_UPDATES_BYTES. Order is kept; a lone message is unchanged."""
    merged: list[pb.StreamStepTasksRequest] = []
    run: list[pb.StreamStepTasksRequest] = []  # consecutive reports not yet merged
    run_bytes = 0

    def end_run() -> None:
        nonlocal run_bytes
        if len(run) == 1:
            merged.append(run[0])
        elif run:
            updates = [pb.StepTaskUpdate(**{kind: getattr(r, kind)}) for r in run if (kind := r.WhichOneof("kind"))]
            merged.append(pb.StreamStepTasksRequest(updates=pb.StepTaskUpdates(updates=updates)))
        run.clear()
        run_bytes = 0

    for request in requests:
        kind = request.WhichOneof("kind")
        if bulk and kind in _REPORT_KINDS:
            size = request.ByteSize()
            if len(run) >= MAX_UPDATES or (run and run_bytes + size > MAX_UPDATES_BYTES):
                end_run()
            run.append(request)
            run_bytes += size
            continue
        end_run()
        if kind == "credit" and merged and merged[-1].WhichOneof("kind") == "credit":
            n = merged[-1].credit.n + request.credit.n
            merged[-1] = pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=n))
        else:
            merged.append(request)
    end_run()
    return merged


def _credit(n: int) -> list[pb.StreamStepTasksRequest]:
    return [pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=n))] if n else []


def _reduced(request: pb.StreamStepTasksRequest, why: str) -> pb.StreamStepTasksRequest:
    """A fail the server will store in place of a refused report: short message, no stack."""
    if request.WhichOneof("kind") == "complete":
        step_id, attempt = request.complete.step_id, request.complete.attempt
        error = pb.Failure(message=f"the server refused the step's result: {why}"[:1000], code="RESULT_REFUSED")
        retryable = False  # the same handler would return the same result
    else:
        step_id, attempt = request.fail.step_id, request.fail.attempt
        original = request.fail.error
        message = original.message.replace("\x00", "")[:1000] or "the step failed"
        error = pb.Failure(message=message, code=original.code.replace("\x00", "")[:100])
        retryable = request.fail.retryable
    fail = pb.StepTaskFail(step_id=step_id, attempt=attempt, error=error, retryable=retryable)
    return pb.StreamStepTasksRequest(fail=fail)


def _refusal_text(refused: pb.StepTaskRefused) -> str:
    """A refusal as the log states it: its reason (the name a program matches on) and message."""
    return f"{refused.reason}: {refused.message}" if refused.reason else refused.message
