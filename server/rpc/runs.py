"""Runs: CreateRun, GetRun, GetRunHistory, UpdateRunStatus. Validate the request into Python
values, let the state store make the change in one statement, turn the row into the response."""

from __future__ import annotations

from typing import Any

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..state.store import RunEngineFields, StateStore
from . import convert, validation
from .fences import fence_of
from .handlers import handles
from .payloads import Payloads

# CreateRun's planned_steps (as the proto says).
MAX_PLANNED_STEPS = 1000


class RunRpcs:
    """The runs' own calls, over the state store."""

    def __init__(self, store: StateStore, payloads: Payloads) -> None:
        self._store = store
        self._payloads = payloads

    @handles("CreateRun")
    async def create_run(
        self, request: pb.CreateRunRequest, context: grpc.aio.ServicerContext[pb.CreateRunRequest, pb.CreateRunResponse]
    ) -> pb.CreateRunResponse:
        workflow = validation.check_name("workflow", request.workflow)
        input_json = self._payloads.json("input_json", request.input_json)
        request_id = validation.check_name("request_id", request.request_id, required=False) or None
        engine = RunEngineFields(
            inline=request.inline,
            graph_hash=validation.check_name("graph_hash", request.graph_hash, required=False) or None,
            metadata_json=self._payloads.json("metadata_json", request.metadata_json) if request.metadata_json else None,
            deterministic=request.deterministic,
            planned_steps_json=planned_steps_from_proto(request.planned_steps),
        )
        row = await self._store.create_run(workflow, input_json, request_id, engine)
        return pb.CreateRunResponse(run=convert.run_to_proto(row))

    @handles("GetRun")
    async def get_run(
        self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext[pb.GetRunRequest, pb.GetRunResponse]
    ) -> pb.GetRunResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        row = await self._store.get_run(run_id)
        return pb.GetRunResponse(run=convert.run_to_proto(row))

    @handles("GetRunHistory")
    async def get_run_history(
        self,
        request: pb.GetRunHistoryRequest,
        context: grpc.aio.ServicerContext[pb.GetRunHistoryRequest, pb.GetRunHistoryResponse],
    ) -> pb.GetRunHistoryResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        rows = await self._store.get_run_history(run_id)
        return pb.GetRunHistoryResponse(attempts=[convert.attempt_to_proto(row) for row in rows])

    @handles("UpdateRunStatus")
    async def update_run_status(
        self,
        request: pb.UpdateRunStatusRequest,
        context: grpc.aio.ServicerContext[pb.UpdateRunStatusRequest, pb.UpdateRunStatusResponse],
    ) -> pb.UpdateRunStatusResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        status = convert.run_status_from_proto("status", request.status)
        output_json = self._payloads.json("output_json", request.output_json) if request.HasField("output_json") else None
        error = self._payloads.failure("error", request.error) if request.HasField("error") else None
        row = await self._store.update_run_status(run_id, status, output_json=output_json, error=error, fence=fence_of(request))
        return pb.UpdateRunStatusResponse(run=convert.run_to_proto(row))


def planned_steps_from_proto(steps: Any) -> str | None:
    """CreateRun's planned_steps, checked (at most MAX_PLANNED_STEPS, each named), as stored."""
    if len(steps) > MAX_PLANNED_STEPS:
        raise errors.InvalidArgument(f"planned_steps has {len(steps)} steps; the limit is {MAX_PLANNED_STEPS}", field="planned_steps", limit=MAX_PLANNED_STEPS)
    for index, step in enumerate(steps):
        validation.check_name(f"planned_steps[{index}].step_name", step.step_name)
        validation.check_name(f"planned_steps[{index}].display_name", step.display_name, required=False)
    return convert.planned_steps_json(steps)


__all__ = ["MAX_PLANNED_STEPS", "RunRpcs", "planned_steps_from_proto"]
