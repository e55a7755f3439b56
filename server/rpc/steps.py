"""Steps: InsertStepState, GetStepState, the status moves SetStepScheduled, SetStepRunning,
SetStepResult, SetStepError, and CreateRetryAttempt. Validate the request into Python values, let
the state store make the change in one statement, turn the row into the response."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..state.store import StateStore
from ..state.transitions import StepStatus, retry_start_statuses
from . import caller, convert, step_options, validation
from .fences import fence_of
from .handlers import handles
from .payloads import Payloads


class StepRpcs:
    """The steps' calls, over the state store; `wake_workers(rpc_name)` tells this server's worker
    streams that a step of that rpc name is due now."""

    def __init__(self, store: StateStore, payloads: Payloads, wake_workers: Callable[[str], None]) -> None:
        self._store = store
        self._payloads = payloads
        self._wake_workers = wake_workers

    @handles("InsertStepState")
    async def insert_step_state(
        self,
        request: pb.InsertStepStateRequest,
        context: grpc.aio.ServicerContext[pb.InsertStepStateRequest, pb.InsertStepStateResponse],
    ) -> pb.InsertStepStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        step_name = validation.check_name("step_name", request.step_name)
        # Empty: a step without a function of its own, never handed to a worker.
        rpc_name = validation.check_name("rpc_name", request.rpc_name, required=False)
        from_step_name = validation.check_name("from_step_name", request.from_step_name, required=False) or None
        data_json = self._payloads.json("data_json", request.data_json)
        options = step_options.options_from_proto(request.options)
        fence = fence_of(request)
        row = await self._store.insert_step(run_id, step_name, rpc_name, data_json, options=options, fence=fence, from_step_name=from_step_name)
        return pb.InsertStepStateResponse(step=convert.step_to_proto(row))

    @handles("GetStepState")
    async def get_step_state(
        self, request: pb.GetStepStateRequest, context: grpc.aio.ServicerContext[pb.GetStepStateRequest, pb.GetStepStateResponse]
    ) -> pb.GetStepStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        step_name = validation.check_name("step_name", request.step_name)
        row = await self._store.get_step(run_id, step_name)
        return pb.GetStepStateResponse(step=convert.step_to_proto(row))

    @handles("SetStepScheduled")
    async def set_step_scheduled(
        self,
        request: pb.SetStepScheduledRequest,
        context: grpc.aio.ServicerContext[pb.SetStepScheduledRequest, pb.SetStepScheduledResponse],
    ) -> pb.SetStepScheduledResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        if request.HasField("not_before") and request.HasField("delay"):
            raise errors.InvalidArgument("set not_before or delay, not both", field=None)
        not_before = convert.timestamp_from_proto("not_before", request.not_before) if request.HasField("not_before") else None
        delay = (
            validation.check_duration("delay", convert.duration_from_proto("delay", request.delay)) if request.HasField("delay") else None
        )
        options = step_options.options_from_proto(request.options)
        fence = fence_of(request)
        row = await self._store.set_step_status(step_id, StepStatus.SCHEDULED, fence=fence, not_before=not_before, delay=delay, options=options)
        if not_before is None and delay is None:
            # Due now: this server's workers hear at once, not after the NOTIFY's way through PostgreSQL.
            self._wake_workers(row["rpc_name"])
        return pb.SetStepScheduledResponse(step=convert.step_to_proto(row))

    @handles("SetStepRunning")
    async def set_step_running(
        self,
        request: pb.SetStepRunningRequest,
        context: grpc.aio.ServicerContext[pb.SetStepRunningRequest, pb.SetStepRunningResponse],
    ) -> pb.SetStepRunningResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        fence = fence_of(request)
        row = await self._store.set_step_status(step_id, StepStatus.RUNNING, fence=fence, takes_worker_tasks=caller.takes_worker_tasks())
        return pb.SetStepRunningResponse(step=convert.step_to_proto(row))

    @handles("SetStepResult")
    async def set_step_result(
        self,
        request: pb.SetStepResultRequest,
        context: grpc.aio.ServicerContext[pb.SetStepResultRequest, pb.SetStepResultResponse],
    ) -> pb.SetStepResultResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        result_json = self._payloads.json("result_json", request.result_json)
        fence = fence_of(request)
        row = await self._store.set_step_status(
            step_id, StepStatus.SUCCEEDED, result_json=result_json, fence=fence, takes_worker_tasks=caller.takes_worker_tasks()
        )
        return pb.SetStepResultResponse(step=convert.step_to_proto(row))

    @handles("SetStepError")
    async def set_step_error(
        self, request: pb.SetStepErrorRequest, context: grpc.aio.ServicerContext[pb.SetStepErrorRequest, pb.SetStepErrorResponse]
    ) -> pb.SetStepErrorResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        if not request.HasField("error"):
            raise errors.InvalidArgument("error is required", field="error")
        error = self._payloads.failure("error", request.error)
        fence = fence_of(request)
        row = await self._store.set_step_status(step_id, StepStatus.FAILED, error=error, fence=fence, takes_worker_tasks=caller.takes_worker_tasks())
        return pb.SetStepErrorResponse(step=convert.step_to_proto(row))

    @handles("CreateRetryAttempt")
    async def create_retry_attempt(
        self,
        request: pb.CreateRetryAttemptRequest,
        context: grpc.aio.ServicerContext[pb.CreateRetryAttemptRequest, pb.CreateRetryAttemptResponse],
    ) -> pb.CreateRetryAttemptResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        status = convert.step_status_from_proto("status", request.status)
        allowed = retry_start_statuses()
        if status not in allowed:
            names = " or ".join(sorted(s.name for s in allowed))
            raise errors.InvalidArgument(f"status of a retry attempt must be {names}, got {status.name}", field="status")
        row = await self._store.create_retry_attempt(step_id, status, fence=fence_of(request))
        return pb.CreateRetryAttemptResponse(step=convert.step_to_proto(row))


__all__ = ["StepRpcs"]
