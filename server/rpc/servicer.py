"""The gRPC servicer: translate each request for the store and each answer back.

No state logic lives here: requests are validated into Python values, the store makes the change,
and the row it returns becomes the response. Errors of the server's own classes become gRPC
statuses through STATUS_OF (status.py); anything else is a bug, logged with its stack and answered INTERNAL
with a reference, never with the stack.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from datetime import timedelta
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

from ..core import errors
from ..db.database import with_deadline
from ..dispatch.dispatcher import TaskDispatcher
from ..events.watchers import EventWatchers
from ..leases.manager import LeaseManager
from ..retention.store import RetentionStore
from ..schedules.firer import ScheduleFirer
from ..schedules.limits import ScheduleLimits
from ..schedules.store import ScheduleStore
from ..state.catalog import RunCatalog, RunPosition
from ..state.store import FailureRecord, Fence, RunEngineFields, StateStore
from ..state.transitions import (
    OPEN_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    RunStatus,
    RunVia,
    StepStatus,
    retry_start_statuses,
    run_sources,
    run_target,
)
from ..state.versions import VersionStore
from . import caller, convert, page_tokens, step_options, validation
from .batch import BatchRunner
from .defaults_servicer import DispatchDefaultsRpcs
from .engine_servicer import EngineStateRpcs, planned_steps_from_proto
from .lease_session import MAX_KEY_LENGTH, LeaseSession
from .reply_bounds import ReplyBound
from .run_filters import run_filter_from_proto
from .schedule_servicer import ScheduleRpcs
from .status import CallStatus, status_of
from .stream_caps import StreamCaps
from .task_session import TaskSession

log = logging.getLogger("workflowstate.server.rpc")


class CallMetrics(Protocol):
    """What the servicer reports of each call (ops/metrics.py implements it)."""

    def stream_opened(self, method: str) -> None: ...

    def stream_closed(self, method: str) -> None: ...

    def rpc_finished(self, method: str, code: grpc.StatusCode, seconds: float | None) -> None: ...

    def batch_operation_finished(self, operation: str, code: grpc.StatusCode) -> None: ...


Request = TypeVar("Request")
Response = TypeVar("Response")
Handler = Callable[[Any, Request, grpc.aio.ServicerContext], Awaitable[Response]]


# Streams are counted as open while they last; their duration is not a latency.
STREAMING_METHODS = frozenset(
    method.name for method in pb.SERVICE_DESCRIPTOR.methods if method.client_streaming or method.server_streaming
)


# Unary RPCs whose reply holds a list (a repeated field at its top): only these can pass the reply
# bound. Any other reply is one item, which the start-up check keeps within the bound
# (reply_bounds.max_item_bytes), so measuring it would cost every call for nothing.
LIST_REPLY_METHODS = frozenset(
    method.name
    for method in pb.SERVICE_DESCRIPTOR.methods
    if not (method.client_streaming or method.server_streaming) and any(field.is_repeated for field in method.output_type.fields)
)


OK = CallStatus(grpc.StatusCode.OK, "", "")
CANCELLED = CallStatus(grpc.StatusCode.CANCELLED, "cancelled: the client went away or the deadline passed", "CANCELLED")


def rpc(method: Handler[Request, Response], name: str | None = None) -> Handler[Request, Response]:
    """Turn the server's errors into gRPC statuses and keep unexpected ones out of the answer.

    Every call is counted in the metrics; at debug level it is logged with its outcome and duration.
    `name` is the RPC's when the method is an inner function named otherwise (see `unary`).
    """
    name = name or method.__name__
    streaming = name in STREAMING_METHODS
    # Streams send their messages one at a time, each one item at most; a Batch keeps its own
    # reply within the bound, operation by operation (batch.py).
    bounded = name in LIST_REPLY_METHODS and name != "Batch"

    @functools.wraps(method)
    async def handler(self: WorkflowStateServicer, request: Request, context: grpc.aio.ServicerContext) -> Response:
        started = time.perf_counter()
        if streaming:
            self.metrics.stream_opened(name)
        outcome: CallStatus | None = None
        try:
            try:
                # A stream holds one of its caller's slots until it ends, however it ends.
                with self.stream_caps.held(name, context) if streaming else contextlib.nullcontext():
                    response = await method(self, request, context)
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


def unary(name: str, inner: Handler[Request, Response]) -> Handler[Request, Response]:
    """The unary RPC `name`, answered by `inner`, which Batch runs for the same operation: one
    function per call, so a batched call and the separate one cannot drift apart."""
    return rpc(inner, name)



class WorkflowStateServicer(EngineStateRpcs, ScheduleRpcs, DispatchDefaultsRpcs, pb_grpc.WorkflowStateServiceServicer):
    """WorkflowStateService over the capability stores (engine state, schedules and dispatch defaults in
    engine_servicer.py, schedule_servicer.py and defaults_servicer.py)."""

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
        task_sessions: Callable[[grpc.aio.ServicerContext], TaskSession],
    ) -> None:
        self._store = store
        self.stream_caps = stream_caps
        self._versions = versions
        self._catalog = catalog
        self._retention = retention
        self._schedules = schedules
        self._schedule_firer = schedule_firer
        self._schedule_limits = schedule_limits
        self._leases = leases
        self._dispatcher = dispatcher
        # Opens each worker stream's session with its collaborators (assembled in ops/app.py).
        self._task_sessions = task_sessions
        self._watchers = watchers
        self.metrics = metrics
        self._max_payload = max_payload_bytes
        self.reply_bound = ReplyBound(max_reply_bytes, max_payload_bytes=max_payload_bytes)
        self.on_database_unavailable = on_database_unavailable
        # The inner functions are named as the oneof fields of BatchOperation (create_run, ...).
        self._batch = BatchRunner(
            lambda kind: getattr(self, kind),
            metrics,
            reply_bound=self.reply_bound,
            max_operations=batch_max_operations,
            concurrency=batch_concurrency,
            on_database_unavailable=on_database_unavailable,
        )

    def _finished(self, name: str, streaming: bool, code: grpc.StatusCode, started: float, details: str) -> None:
        """Count a finished call and, at debug level, log it with its outcome and duration."""
        seconds = time.perf_counter() - started
        if streaming:
            self.metrics.stream_closed(name)
        self.metrics.rpc_finished(name, code, None if streaming else seconds)
        if log.isEnabledFor(logging.DEBUG):
            extra = {"rpc": name, "code": code.name, "ms": round(seconds * 1000, 3)}
            log.debug("request", extra={**extra, "detail": details} if details else extra)

    def _json(self, field: str, text: str) -> str:
        return validation.check_json(field, text, max_bytes=self._max_payload)

    def _failure(self, field: str, message: pb.Failure) -> FailureRecord:
        validation.check_failure(field, message.message, message.stack, message.code, max_bytes=self._max_payload)
        return convert.failure_from_proto(message)

    @staticmethod
    def _fence(request: Any) -> Fence | None:
        """The lease a write is made under, if the request names one."""
        key = validation.check_name("lease_key", request.lease_key, required=False, max_length=MAX_KEY_LENGTH) or None
        if not request.HasField("fencing_token"):
            if key:
                raise errors.InvalidArgument("lease_key is set but fencing_token is not")
            return None
        if request.fencing_token <= 0:
            raise errors.InvalidArgument(f"fencing_token must be positive, got {request.fencing_token}")
        return Fence(request.fencing_token, key)

    async def _call(self, context: grpc.aio.ServicerContext, call: Awaitable[Any]) -> Any:
        return await with_deadline(call, context.time_remaining())

    async def create_run(self, request: pb.CreateRunRequest, context: grpc.aio.ServicerContext) -> pb.CreateRunResponse:
        workflow = validation.check_name("workflow", request.workflow)
        input_json = self._json("input_json", request.input_json)
        request_id = validation.check_name("request_id", request.request_id, required=False) or None
        engine = RunEngineFields(
            inline=request.inline,
            graph_hash=validation.check_name("graph_hash", request.graph_hash, required=False) or None,
            metadata_json=self._json("metadata_json", request.metadata_json) if request.metadata_json else None,
            deterministic=request.deterministic,
            planned_steps_json=planned_steps_from_proto(request.planned_steps),
        )
        row = await self._call(context, self._store.create_run(workflow, input_json, request_id, engine))
        return pb.CreateRunResponse(run=convert.run_to_proto(row))

    CreateRun = unary("CreateRun", create_run)

    async def get_run(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.GetRunResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        row = await self._call(context, self._store.get_run(run_id))
        return pb.GetRunResponse(run=convert.run_to_proto(row))

    GetRun = unary("GetRun", get_run)

    async def get_run_history(self, request: pb.GetRunHistoryRequest, context: grpc.aio.ServicerContext) -> pb.GetRunHistoryResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        rows = await self._call(context, self._store.get_run_history(run_id))
        return pb.GetRunHistoryResponse(attempts=[convert.attempt_to_proto(row) for row in rows])

    GetRunHistory = unary("GetRunHistory", get_run_history)

    async def update_run_status(self, request: pb.UpdateRunStatusRequest, context: grpc.aio.ServicerContext) -> pb.UpdateRunStatusResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        status = convert.run_status_from_proto("status", request.status)
        output_json = self._json("output_json", request.output_json) if request.HasField("output_json") else None
        error = self._failure("error", request.error) if request.HasField("error") else None
        row = await self._call(context, self._store.update_run_status(run_id, status, output_json=output_json, error=error, fence=self._fence(request)))
        return pb.UpdateRunStatusResponse(run=convert.run_to_proto(row))

    UpdateRunStatus = unary("UpdateRunStatus", update_run_status)

    async def insert_step_state(self, request: pb.InsertStepStateRequest, context: grpc.aio.ServicerContext) -> pb.InsertStepStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        step_name = validation.check_name("step_name", request.step_name)
        # Empty: a step without a function of its own, never handed to a worker.
        rpc_name = validation.check_name("rpc_name", request.rpc_name, required=False)
        from_step_name = validation.check_name("from_step_name", request.from_step_name, required=False) or None
        data_json = self._json("data_json", request.data_json)
        options = step_options.options_from_proto(request.options)
        fence = self._fence(request)
        row = await self._call(
            context,
            self._store.insert_step(run_id, step_name, rpc_name, data_json, options=options, fence=fence, from_step_name=from_step_name),
        )
        return pb.InsertStepStateResponse(step=convert.step_to_proto(row))

    InsertStepState = unary("InsertStepState", insert_step_state)

    async def get_step_state(self, request: pb.GetStepStateRequest, context: grpc.aio.ServicerContext) -> pb.GetStepStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        step_name = validation.check_name("step_name", request.step_name)
        row = await self._call(context, self._store.get_step(run_id, step_name))
        return pb.GetStepStateResponse(step=convert.step_to_proto(row))

    GetStepState = unary("GetStepState", get_step_state)

    async def set_step_scheduled(self, request: pb.SetStepScheduledRequest, context: grpc.aio.ServicerContext) -> pb.SetStepScheduledResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        if request.HasField("not_before") and request.HasField("delay"):
            raise errors.InvalidArgument("set not_before or delay, not both")
        not_before = convert.timestamp_from_proto("not_before", request.not_before) if request.HasField("not_before") else None
        delay = (
            validation.check_duration("delay", convert.duration_from_proto("delay", request.delay)) if request.HasField("delay") else None
        )
        options = step_options.options_from_proto(request.options)
        fence = self._fence(request)
        row = await self._call(
            context,
            self._store.set_step_status(step_id, StepStatus.SCHEDULED, fence=fence, not_before=not_before, delay=delay, options=options),
        )
        if not_before is None and delay is None:
            # Due now: this server's workers hear at once, not after the NOTIFY's way through PostgreSQL.
            self._dispatcher.wake_rpc(row["rpc_name"])
        return pb.SetStepScheduledResponse(step=convert.step_to_proto(row))

    SetStepScheduled = unary("SetStepScheduled", set_step_scheduled)

    async def set_step_running(self, request: pb.SetStepRunningRequest, context: grpc.aio.ServicerContext) -> pb.SetStepRunningResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        fence = self._fence(request)
        row = await self._call(
            context, self._store.set_step_status(step_id, StepStatus.RUNNING, fence=fence, takes_worker_tasks=caller.takes_worker_tasks())
        )
        return pb.SetStepRunningResponse(step=convert.step_to_proto(row))

    SetStepRunning = unary("SetStepRunning", set_step_running)

    async def set_step_result(self, request: pb.SetStepResultRequest, context: grpc.aio.ServicerContext) -> pb.SetStepResultResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        result_json = self._json("result_json", request.result_json)
        fence = self._fence(request)
        row = await self._call(
            context,
            self._store.set_step_status(
                step_id, StepStatus.SUCCEEDED, result_json=result_json, fence=fence, takes_worker_tasks=caller.takes_worker_tasks()
            ),
        )
        return pb.SetStepResultResponse(step=convert.step_to_proto(row))

    SetStepResult = unary("SetStepResult", set_step_result)

    async def set_step_error(self, request: pb.SetStepErrorRequest, context: grpc.aio.ServicerContext) -> pb.SetStepErrorResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        if not request.HasField("error"):
            raise errors.InvalidArgument("error is required")
        error = self._failure("error", request.error)
        fence = self._fence(request)
        row = await self._call(
            context,
            self._store.set_step_status(step_id, StepStatus.FAILED, error=error, fence=fence, takes_worker_tasks=caller.takes_worker_tasks()),
        )
        return pb.SetStepErrorResponse(step=convert.step_to_proto(row))

    SetStepError = unary("SetStepError", set_step_error)

    async def create_retry_attempt(
        self, request: pb.CreateRetryAttemptRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRetryAttemptResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        status = convert.step_status_from_proto("status", request.status)
        allowed = retry_start_statuses()
        if status not in allowed:
            names = " or ".join(sorted(s.name for s in allowed))
            raise errors.InvalidArgument(f"status of a retry attempt must be {names}, got {status.name}")
        row = await self._call(context, self._store.create_retry_attempt(step_id, status, fence=self._fence(request)))
        return pb.CreateRetryAttemptResponse(step=convert.step_to_proto(row))

    CreateRetryAttempt = unary("CreateRetryAttempt", create_retry_attempt)

    @rpc
    async def Lease(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await LeaseSession(self._leases, context).run()

    @rpc
    async def StreamStepTasks(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await self._task_sessions(context).run()

    @rpc
    async def WatchRun(self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext) -> None:
        run_id = validation.parse_uuid("run_id", request.run_id)
        after_event_id = validation.check_event_id("after_event_id", request.after_event_id)
        await self._call(context, self._store.get_run(run_id))
        start, seen = await self._call(context, self._watchers.events.position_of(after_event_id, run_id=run_id))
        if seen is not None and _finishes_run(seen):
            return  # nothing can follow the event that finished the run
        async with contextlib.aclosing(self._watchers.watch_run(run_id, start)) as events:
            async for row in events:
                await context.write(pb.WatchRunResponse(event=convert.event_to_proto(row)))
                if _finishes_run(row):
                    return

    @rpc
    async def StreamRunEvents(self, request: pb.StreamRunEventsRequest, context: grpc.aio.ServicerContext) -> None:
        workflow = validation.check_name("workflow", request.workflow, required=False) or None
        after_event_id = validation.check_event_id("after_event_id", request.after_event_id)
        start, _ = await self._call(context, self._watchers.events.position_of(after_event_id))
        events = self._watchers.events
        with self._watchers.watching(None) as wake:
            async for row in self._watchers.follow(lambda after, limit: events.of_all(workflow, after, limit), start, wake):
                await context.write(pb.StreamRunEventsResponse(event=convert.event_to_proto(row)))

    @rpc
    async def Batch(self, request: pb.BatchRequest, context: grpc.aio.ServicerContext) -> pb.BatchResponse:
        return await self._batch.run(request, context)

    async def get_lease(self, request: pb.GetLeaseRequest, context: grpc.aio.ServicerContext) -> pb.GetLeaseResponse:
        key = validation.check_name("key", request.key, max_length=MAX_KEY_LENGTH)
        row = await self._call(context, self._leases.get(key))
        if row is None:
            raise errors.NotFound(f"nobody holds the lease {key!r}")
        return pb.GetLeaseResponse(lease=convert.lease_to_proto(row))

    GetLease = unary("GetLease", get_lease)

    # Managing runs: lists, cancels and deletes for operators.

    async def list_runs(self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext) -> pb.ListRunsResponse:
        runs = run_filter_from_proto("filter", request.filter)
        newest_first = _newest_first(request.order_by)
        page_size = page_tokens.page_size(request.page_size)
        full = _full_view(request.view)
        query = page_tokens.runs_query(runs, newest_first)
        after = page_tokens.decode_run_position(request.page_token, query)

        def fetch(after: RunPosition | None, limit: int) -> Awaitable[list[Any]]:
            return self._call(context, self._catalog.list_runs(runs, newest_first=newest_first, after=after, limit=limit, full=full))

        # The basic view carries no payloads but its error's message and code.
        row_bytes = self.reply_bound.item_bytes if full else self.reply_bound.row_bytes(payload_fields=1)
        page, last = await self.reply_bound.page(
            fetch, RunPosition.of, convert.run_to_proto, after=after, page_size=page_size, row_bytes=row_bytes
        )
        next_token = page_tokens.encode_run_position(last, query) if last is not None else ""
        return pb.ListRunsResponse(runs=page, next_page_token=next_token)

    ListRuns = unary("ListRuns", list_runs)

    async def list_steps(self, request: pb.ListStepsRequest, context: grpc.aio.ServicerContext) -> pb.ListStepsResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        rows = await self._call(context, self._catalog.list_steps(run_id))
        return pb.ListStepsResponse(steps=[convert.step_to_proto(row) for row in rows])

    ListSteps = unary("ListSteps", list_steps)

    async def list_workflows(self, request: pb.ListWorkflowsRequest, context: grpc.aio.ServicerContext) -> pb.ListWorkflowsResponse:
        counts = await self._call(context, self._catalog.count_runs())
        return pb.ListWorkflowsResponse(
            workflows=[
                pb.WorkflowSummary(
                    workflow=workflow,
                    run_counts=[pb.RunStatusCount(status=convert.RUN_STATUS_TO_PROTO[status], run_count=n) for status, n in by_status.items()],
                )
                for workflow, by_status in counts.items()
            ]
        )

    ListWorkflows = unary("ListWorkflows", list_workflows)

    async def cancel_run(self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext) -> pb.CancelRunResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        reason = _reason(request.reason)
        row = await self._call(context, self._catalog.cancel_run(run_id, reason))
        # This server's worker streams hear at once; the others through the NOTIFY of the trigger function announce_finished_run.
        self._dispatcher.runs_finished(frozenset((run_id,)))
        return pb.CancelRunResponse(run=convert.run_to_proto(row))

    CancelRun = unary("CancelRun", cancel_run)

    async def cancel_runs(self, request: pb.CancelRunsRequest, context: grpc.aio.ServicerContext) -> pb.CancelRunsResponse:
        runs = run_filter_from_proto("filter", request.filter)
        cancellable = {RunStatus(status) for status in run_sources(run_target(RunVia.CANCEL), RunVia.CANCEL)}
        if runs.statuses - cancellable:
            names = " or ".join(convert.RUN_STATUS_TO_PROTO_NAME[status] for status in sorted(cancellable))
            raise errors.InvalidArgument(f"filter.statuses may only hold {names} (or be empty): only runs not finished can be cancelled")
        max_runs = _max_runs(request.max_runs)
        reason = _reason(request.reason)
        run_ids = await self._call(context, self._catalog.cancel_runs(runs, max_runs, reason))
        if run_ids:
            self._dispatcher.runs_finished(frozenset(run_ids))
        return pb.CancelRunsResponse(cancelled_count=len(run_ids), run_ids=[str(run_id) for run_id in run_ids])

    CancelRuns = unary("CancelRuns", cancel_runs)

    async def delete_run(self, request: pb.DeleteRunRequest, context: grpc.aio.ServicerContext) -> pb.DeleteRunResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        await self._call(context, self._catalog.delete_run(run_id, force=request.force))
        return pb.DeleteRunResponse()

    DeleteRun = unary("DeleteRun", delete_run)

    async def delete_runs(self, request: pb.DeleteRunsRequest, context: grpc.aio.ServicerContext) -> pb.DeleteRunsResponse:
        runs = run_filter_from_proto("filter", request.filter)
        if not request.force and runs.statuses and runs.statuses <= OPEN_RUN_STATUSES:
            raise errors.InvalidArgument(
                "filter.statuses holds only statuses of runs not finished (RUN_STATUS_RUNNING, RUN_STATUS_SUSPENDED) but force is false: "
                "those runs are erased only with force"
            )
        if not 1 <= request.max_runs <= MAX_BULK_DELETES:
            raise errors.InvalidArgument(f"max_runs must be 1 to {MAX_BULK_DELETES}, got {request.max_runs}")
        run_ids = await self._call(context, self._catalog.delete_runs(runs, request.max_runs, force=request.force))
        return pb.DeleteRunsResponse(deleted_count=len(run_ids), run_ids=[str(run_id) for run_id in run_ids])

    DeleteRuns = unary("DeleteRuns", delete_runs)

    async def list_leases(self, request: pb.ListLeasesRequest, context: grpc.aio.ServicerContext) -> pb.ListLeasesResponse:
        prefix = validation.check_name("key_prefix", request.key_prefix, required=False, max_length=MAX_KEY_LENGTH)
        page_size = page_tokens.page_size(request.page_size)
        query = page_tokens.leases_query(prefix)
        after = page_tokens.decode_lease_position(request.page_token, query)

        def fetch(after: str | None, limit: int) -> Awaitable[list[Any]]:
            return self._call(context, self._leases.held(prefix or None, after, limit))

        page, last = await self.reply_bound.page(
            fetch, lambda row: row["key"], convert.lease_to_proto, after=after, page_size=page_size, row_bytes=self.reply_bound.row_bytes(payload_fields=0)
        )
        next_token = page_tokens.encode_lease_position(last, query) if last is not None else ""
        return pb.ListLeasesResponse(leases=page, next_page_token=next_token)

    ListLeases = unary("ListLeases", list_leases)

    # Retention and workers.

    async def set_retention_policy(
        self, request: pb.SetRetentionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetRetentionPolicyResponse:
        workflow = validation.check_name("workflow", request.workflow, required=False) or None
        statuses = {convert.run_status_from_proto("statuses", number) for number in request.statuses}
        if statuses - TERMINAL_RUN_STATUSES:
            raise errors.InvalidArgument(
                "statuses may only hold finished statuses (RUN_STATUS_COMPLETED, RUN_STATUS_FAILED, RUN_STATUS_CANCELLED): "
                "retention never erases a run that is not finished (running or suspended)"
            )
        if not request.HasField("keep"):
            raise errors.InvalidArgument("keep is required")
        keep = convert.duration_from_proto("keep", request.keep)
        if not timedelta(0) < keep <= MAX_RETENTION_KEEP:
            raise errors.InvalidArgument(f"keep must be positive and at most {MAX_RETENTION_KEEP.days} days, got {keep}")
        row = await self._call(context, self._retention.set_policy(workflow, statuses, keep))
        return pb.SetRetentionPolicyResponse(policy=convert.retention_policy_to_proto(row))

    SetRetentionPolicy = unary("SetRetentionPolicy", set_retention_policy)

    async def list_retention_policies(
        self, request: pb.ListRetentionPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRetentionPoliciesResponse:
        rows = await self._call(context, self._retention.list_policies())
        return pb.ListRetentionPoliciesResponse(policies=[convert.retention_policy_to_proto(row) for row in rows])

    ListRetentionPolicies = unary("ListRetentionPolicies", list_retention_policies)

    async def delete_retention_policy(
        self, request: pb.DeleteRetentionPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRetentionPolicyResponse:
        if request.policy_id <= 0:
            raise errors.InvalidArgument(f"policy_id must be positive, got {request.policy_id}")
        await self._call(context, self._retention.delete_policy(request.policy_id))
        return pb.DeleteRetentionPolicyResponse()

    DeleteRetentionPolicy = unary("DeleteRetentionPolicy", delete_retention_policy)

    async def list_workers(self, request: pb.ListWorkersRequest, context: grpc.aio.ServicerContext) -> pb.ListWorkersResponse:
        rows = await self._call(context, self._dispatcher.workers.listed())
        return pb.ListWorkersResponse(workers=[convert.worker_to_proto(row) for row in rows])

    ListWorkers = unary("ListWorkers", list_workers)

    # Engine state: the calls are EngineStateRpcs' (engine_servicer.py).
    SetStepSuspended = unary("SetStepSuspended", EngineStateRpcs.set_step_suspended)
    SetStepChildRun = unary("SetStepChildRun", EngineStateRpcs.set_step_child_run)
    SetStepBranch = unary("SetStepBranch", EngineStateRpcs.set_step_branch)
    ClaimStep = unary("ClaimStep", EngineStateRpcs.claim_step)
    UpdateRunState = unary("UpdateRunState", EngineStateRpcs.update_run_state)
    GetRunState = unary("GetRunState", EngineStateRpcs.get_run_state)
    UpsertWorkflowVersion = unary("UpsertWorkflowVersion", EngineStateRpcs.upsert_workflow_version)
    GetWorkflowVersion = unary("GetWorkflowVersion", EngineStateRpcs.get_workflow_version)
    UpdateWorkflowVersionStatus = unary("UpdateWorkflowVersionStatus", EngineStateRpcs.update_workflow_version_status)
    ListStalledRuns = unary("ListStalledRuns", EngineStateRpcs.list_stalled_runs)
    ListUndispatchedSteps = unary("ListUndispatchedSteps", EngineStateRpcs.list_undispatched_steps)

    # Schedules and dispatch defaults: schedule_servicer.py, defaults_servicer.py.
    CreateSchedule = unary("CreateSchedule", ScheduleRpcs.create_schedule)
    ListSchedules = unary("ListSchedules", ScheduleRpcs.list_schedules)
    PauseSchedule = unary("PauseSchedule", ScheduleRpcs.pause_schedule)
    ResumeSchedule = unary("ResumeSchedule", ScheduleRpcs.resume_schedule)
    DeleteSchedule = unary("DeleteSchedule", ScheduleRpcs.delete_schedule)
    SetDispatchDefaults = unary("SetDispatchDefaults", DispatchDefaultsRpcs.set_dispatch_defaults)
    ListDispatchDefaults = unary("ListDispatchDefaults", DispatchDefaultsRpcs.list_dispatch_defaults)
    DeleteDispatchDefaults = unary("DeleteDispatchDefaults", DispatchDefaultsRpcs.delete_dispatch_defaults)


def _newest_first(order_by: int) -> bool:
    if order_by in (pb.RUN_ORDER_UNSPECIFIED, pb.RUN_ORDER_CREATE_TIME_DESC):
        return True
    if order_by == pb.RUN_ORDER_CREATE_TIME_ASC:
        return False
    raise errors.InvalidArgument(f"order_by must be RUN_ORDER_CREATE_TIME_DESC or RUN_ORDER_CREATE_TIME_ASC, got {order_by}")


def _full_view(view: int) -> bool:
    if view in (pb.RUN_VIEW_UNSPECIFIED, pb.RUN_VIEW_BASIC):
        return False
    if view == pb.RUN_VIEW_FULL:
        return True
    raise errors.InvalidArgument(f"view must be RUN_VIEW_BASIC or RUN_VIEW_FULL, got {view}")


MAX_REASON_LENGTH = 1024
# A century: far longer than anyone keeps a run, and far within PostgreSQL's timestamps (now() -
# keep must stay after 4713 BC, or the purger's statement fails on every tick).
MAX_RETENTION_KEEP = timedelta(days=36525)
MAX_BULK_RUNS = 10_000
# Deletes of one call are one transaction: kept short.
MAX_BULK_DELETES = 1000


def _reason(reason: str) -> str:
    return validation.check_name("reason", reason, required=False, max_length=MAX_REASON_LENGTH) or "cancelled"


def _max_runs(max_runs: int) -> int:
    if not 1 <= max_runs <= MAX_BULK_RUNS:
        raise errors.InvalidArgument(f"max_runs must be 1 to {MAX_BULK_RUNS}, got {max_runs}")
    return max_runs


def _finishes_run(event: dict[str, Any]) -> bool:
    """Whether an event row is the run's move to a finished status (no event can follow it)."""
    return event["step_id"] is None and RunStatus(event["status"]) in TERMINAL_RUN_STATUSES
