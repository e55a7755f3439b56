"""The gRPC servicer: WorkflowStateService assembled from its capabilities, each RPC served alike.

Each capability module (runs.py, steps.py, engine.py, leases.py, workers.py, events.py,
schedules.py, operations.py) validates its requests into Python values, lets its store make the
change, and turns the row it returns into the response; its handlers are marked with the RPC they
answer (handlers.py), and the table of them is checked against the service when the server
starts. Every call goes through one wrapper here: the deadline of a unary call, the metrics, the
reply bound, and the errors: those of the server's own classes become gRPC statuses through
status_of; anything else is a bug, logged with its stack and answered INTERNAL with a reference,
never with the stack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import grpc

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

from ..dispatch.dispatcher import TaskDispatcher
from ..events.watchers import EventWatchers
from ..leases.manager import LeaseManager
from ..retention.store import RetentionStore
from ..schedules.firer import ScheduleFirer
from ..schedules.limits import ScheduleLimits
from ..schedules.store import ScheduleStore
from ..state.catalog import RunCatalog
from ..state.store import StateStore
from ..state.versions import VersionStore
from .batch import BatchRunner
from .engine import EngineRpcs
from .events import EventRpcs
from .handlers import AnyContext, Handler, check_complete, handlers_of, within_deadline
from .leases import LeaseRpcs
from .operations import OperationRpcs
from .payloads import Payloads
from .reply_bounds import ReplyBound
from .rpc_facts import FACTS, SERVICE
from .runs import RunRpcs
from .schedules import ScheduleRpcs
from .task_session import TaskSession
from .status import CallStatus, status_of
from .steps import StepRpcs
from .stream_caps import StreamCaps
from .workers import WorkerRpcs

log = logging.getLogger("workflowstate.server.rpc")


class CallMetrics(Protocol):
    """What the servicer reports of each call (ops/metrics.py implements it)."""

    def stream_opened(self, method: str) -> None: ...

    def stream_closed(self, method: str) -> None: ...

    def rpc_finished(self, method: str, code: grpc.StatusCode, seconds: float | None) -> None: ...

    def batch_operation_finished(self, operation: str, code: grpc.StatusCode) -> None: ...


# Streams are counted as open while they last; their duration is not a latency.
STREAMING_METHODS = frozenset(name for name, facts in FACTS.items() if facts.streaming)


# Unary RPCs whose reply holds a list (a repeated field at its top): only these can pass the reply
# bound. Any other reply is one item, which the start-up check keeps within the bound
# (reply_bounds.max_item_bytes), so measuring it would cost every call for nothing.
LIST_REPLY_METHODS = frozenset(
    method.name
    for method in SERVICE.methods
    if not FACTS[method.name].streaming and any(field.is_repeated for field in method.output_type.fields)
)


OK = CallStatus(grpc.StatusCode.OK, "", "")
CANCELLED = CallStatus(grpc.StatusCode.CANCELLED, "cancelled: the client went away or the deadline passed", "CANCELLED")


class WorkflowStateServicer(pb_grpc.WorkflowStateServiceServicer):
    """WorkflowStateService over the capability stores: every RPC is an attribute of the servicer
    (as gRPC's registration reads them), its capability's handler behind the one wrapper."""

    def __init__(
        self,
        store: StateStore,
        leases: LeaseManager,
        dispatcher: TaskDispatcher,
        watchers: EventWatchers,
        metrics: CallMetrics,
        *,
        max_payload_bytes: int,
        max_reply_bytes: int,
        batch_max_operations: int,
        batch_concurrency: int,
        on_database_unavailable: Callable[[Exception], None],
        catalog: RunCatalog,
        retention: RetentionStore,
        versions: VersionStore,
        schedules: ScheduleStore,
        schedule_firer: ScheduleFirer,
        schedule_limits: ScheduleLimits,
        stream_caps: StreamCaps,
        task_sessions: Callable[[grpc.aio.ServicerContext[pb.StreamStepTasksRequest, pb.StreamStepTasksResponse]], TaskSession],
    ) -> None:
        self.stream_caps = stream_caps
        self.metrics = metrics
        self.reply_bound = ReplyBound(max_reply_bytes, max_payload_bytes=max_payload_bytes)
        self.on_database_unavailable = on_database_unavailable
        payloads = Payloads(max_payload_bytes)
        # One table of every RPC's handler; a Batch operation runs its RPC's own handler from it.
        self.handlers: dict[str, Handler] = {}
        batch = BatchRunner(
            self.handlers,
            metrics,
            reply_bound=self.reply_bound,
            max_operations=batch_max_operations,
            concurrency=batch_concurrency,
            on_database_unavailable=on_database_unavailable,
        )
        self.handlers.update(
            handlers_of(
                (
                    RunRpcs(store, payloads),
                    StepRpcs(store, payloads, dispatcher.wake_rpc),
                    EngineRpcs(store, catalog, versions, payloads),
                    LeaseRpcs(leases, self.reply_bound),
                    WorkerRpcs(task_sessions, dispatcher.workers, dispatcher.defaults),
                    EventRpcs(store, watchers),
                    ScheduleRpcs(schedules, schedule_firer, schedule_limits, self.reply_bound, payloads),
                    OperationRpcs(catalog, retention, self.reply_bound, dispatcher.runs_finished),
                    batch,
                )
            )
        )
        check_complete(self.handlers, SERVICE)
        for name, handler in self.handlers.items():
            setattr(self, name, self._served(name, handler))

    def _served(self, name: str, method: Handler) -> Handler:
        """`method` as the RPC `name` is served: a unary call within its deadline; the server's errors
        turned into gRPC statuses and unexpected ones kept out of the answer; every call counted in
        the metrics and, at debug level, logged with its outcome and duration."""
        streaming = name in STREAMING_METHODS
        # Streams send their messages one at a time, each one item at most; a Batch keeps its own
        # reply within the bound, operation by operation (batch.py).
        bounded = name in LIST_REPLY_METHODS and name != "Batch"

        async def handler(request: Any, context: AnyContext) -> Any:
            started = time.perf_counter()
            if streaming:
                self.metrics.stream_opened(name)
            outcome: CallStatus | None = None
            try:
                try:
                    if streaming:
                        # A stream holds one of its caller's slots until it ends, however it ends.
                        with self.stream_caps.held(name, context):
                            response = await method(request, context)
                    else:
                        response = await within_deadline(method, request, context)
                    if bounded:
                        self.reply_bound.check(name, response)
                except Exception as err:
                    outcome = status_of(err, name, self.on_database_unavailable)
                else:
                    outcome = OK
                    return response
            finally:
                # Before the status goes out (so a client that saw it sees it counted). No outcome means
                # the call was cancelled (client gone, deadline passed): CancelledError is no Exception.
                status = outcome or CANCELLED
                self._finished(name, streaming, status.code, started, status.message)
            await context.abort(status.code, status.message, status.trailing_metadata())
            raise AssertionError("context.abort returns only by raising")

        handler.__name__ = handler.__qualname__ = name
        return handler

    def _finished(self, name: str, streaming: bool, code: grpc.StatusCode, started: float, details: str) -> None:
        """Count a finished call and, at debug level, log it with its outcome and duration."""
        seconds = time.perf_counter() - started
        if streaming:
            self.metrics.stream_closed(name)
        self.metrics.rpc_finished(name, code, None if streaming else seconds)
        if log.isEnabledFor(logging.DEBUG):
            extra = {"rpc": name, "code": code.name, "ms": round(seconds * 1000, 3)}
            log.debug("request", extra={**extra, "detail": details} if details else extra)


__all__ = ["CallMetrics", "LIST_REPLY_METHODS", "STREAMING_METHODS", "WorkflowStateServicer"]
