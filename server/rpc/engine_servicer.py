"""The engine-state RPCs of WorkflowStateService: what a workflow engine such as Pikku
keeps beside runs and steps. A mixin of the servicer (servicer.py), kept apart so each module
stays one screenful of calls; the same shape as there: validate the request into Python values,
let the store make the change in one statement, turn the row into the response.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Any, Protocol

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..state.catalog import RunCatalog
from ..state.outcomes import Outcome
from ..state.store import Fence, StateStore
from ..state.transitions import VERSION_START
from ..state.versions import VersionStore
from . import caller, convert, validation

# ListStalledRuns' max_runs and ListUndispatchedSteps' max_steps (as the proto says).
MAX_ENGINE_LIST = 1000
# CreateRun's planned_steps (as the proto says).
MAX_PLANNED_STEPS = 1000


class _Servicer(Protocol):
    """What the mixin uses of the servicer it is part of."""

    _store: StateStore
    _catalog: RunCatalog
    _versions: VersionStore
    _max_payload: int

    def _json(self, field: str, text: str) -> str: ...

    @staticmethod
    def _fence(request: Any) -> Fence | None: ...

    async def _call(self, context: grpc.aio.ServicerContext, call: Awaitable[Any]) -> Any: ...


class EngineStateRpcs:
    """SetStepSuspended ... ListUndispatchedSteps; registered as RPCs by the servicer (servicer.py)."""

    async def set_step_suspended(
        self: _Servicer, request: pb.SetStepSuspendedRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetStepSuspendedResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        row = await self._call(context, self._store.set_step_suspended(step_id, fence=self._fence(request)))
        return pb.SetStepSuspendedResponse(step=convert.step_to_proto(row))

    async def set_step_child_run(
        self: _Servicer, request: pb.SetStepChildRunRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetStepChildRunResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        child_run_id = validation.parse_uuid("child_run_id", request.child_run_id)
        row = await self._call(context, self._store.set_step_child_run(step_id, child_run_id, fence=self._fence(request)))
        return pb.SetStepChildRunResponse(step=convert.step_to_proto(row))

    async def set_step_branch(
        self: _Servicer, request: pb.SetStepBranchRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetStepBranchResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        branch_key = validation.check_name("branch_key", request.branch_key)
        row = await self._call(context, self._store.set_step_branch(step_id, branch_key, fence=self._fence(request)))
        return pb.SetStepBranchResponse(step=convert.step_to_proto(row))

    async def claim_step(self: _Servicer, request: pb.ClaimStepRequest, context: grpc.aio.ServicerContext) -> pb.ClaimStepResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        step_name = validation.check_name("step_name", request.step_name)
        rpc_name = validation.check_name("rpc_name", request.rpc_name, required=False)
        fence = self._fence(request)
        claim = self._store.claim_step(run_id, step_name, rpc_name, fence=fence, takes_worker_tasks=caller.takes_worker_tasks())
        row = await self._call(context, claim)
        return pb.ClaimStepResponse(claimed=row["outcome"] == Outcome.CHANGED, step=convert.step_to_proto(row))

    async def update_run_state(
        self: _Servicer, request: pb.UpdateRunStateRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateRunStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        name = validation.check_name("name", request.name)
        value_json = self._json("value_json", request.value_json)
        fence = self._fence(request)
        await self._call(context, self._store.update_run_state(run_id, name, value_json, max_bytes=self._max_payload, fence=fence))
        return pb.UpdateRunStateResponse()

    async def get_run_state(self: _Servicer, request: pb.GetRunStateRequest, context: grpc.aio.ServicerContext) -> pb.GetRunStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        state_json = await self._call(context, self._store.get_run_state(run_id))
        return pb.GetRunStateResponse(state_json=state_json)

    async def upsert_workflow_version(
        self: _Servicer, request: pb.UpsertWorkflowVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertWorkflowVersionResponse:
        workflow = validation.check_name("workflow", request.workflow)
        graph_hash = validation.check_name("graph_hash", request.graph_hash)
        graph_json = self._json("graph_json", request.graph_json)
        source = validation.check_name("source", request.source, required=False)
        status = (
            VERSION_START
            if request.status == pb.WORKFLOW_VERSION_STATUS_UNSPECIFIED
            else convert.version_status_from_proto("status", request.status)
        )
        row = await self._call(context, self._versions.upsert(workflow, graph_hash, graph_json, source, status))
        return pb.UpsertWorkflowVersionResponse(version=convert.version_to_proto(row), created=row["created"])

    async def get_workflow_version(
        self: _Servicer, request: pb.GetWorkflowVersionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWorkflowVersionResponse:
        workflow = validation.check_name("workflow", request.workflow)
        graph_hash = validation.check_name("graph_hash", request.graph_hash)
        row = await self._call(context, self._versions.get(workflow, graph_hash))
        return pb.GetWorkflowVersionResponse(version=convert.version_to_proto(row))

    async def update_workflow_version_status(
        self: _Servicer, request: pb.UpdateWorkflowVersionStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateWorkflowVersionStatusResponse:
        workflow = validation.check_name("workflow", request.workflow)
        graph_hash = validation.check_name("graph_hash", request.graph_hash)
        status = convert.version_status_from_proto("status", request.status)
        row = await self._call(context, self._versions.update_status(workflow, graph_hash, status))
        return pb.UpdateWorkflowVersionStatusResponse(version=convert.version_to_proto(row))

    async def list_stalled_runs(
        self: _Servicer, request: pb.ListStalledRunsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListStalledRunsResponse:
        updated_before = _updated_before(request)
        limit = _engine_list_limit("max_runs", request.max_runs)
        run_ids = await self._call(context, self._catalog.list_stalled_runs(updated_before, limit))
        return pb.ListStalledRunsResponse(run_ids=[str(run_id) for run_id in run_ids])

    async def list_undispatched_steps(
        self: _Servicer, request: pb.ListUndispatchedStepsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListUndispatchedStepsResponse:
        updated_before = _updated_before(request)
        limit = _engine_list_limit("max_steps", request.max_steps)
        rows = await self._call(context, self._catalog.list_undispatched_steps(updated_before, limit))
        return pb.ListUndispatchedStepsResponse(steps=[pb.StepRef(run_id=str(row["run_id"]), step_id=str(row["step_id"])) for row in rows])


def _updated_before(request: pb.ListStalledRunsRequest | pb.ListUndispatchedStepsRequest) -> datetime:
    if not request.HasField("updated_before"):
        raise errors.InvalidArgument("updated_before is required")
    return convert.timestamp_from_proto("updated_before", request.updated_before)


def _engine_list_limit(field: str, value: int) -> int:
    if not 1 <= value <= MAX_ENGINE_LIST:
        raise errors.InvalidArgument(f"{field} must be 1 to {MAX_ENGINE_LIST}, got {value}")
    return value


def planned_steps_from_proto(steps: Any) -> str | None:
    """CreateRun's planned_steps, checked (at most MAX_PLANNED_STEPS, each named), as stored."""
    if len(steps) > MAX_PLANNED_STEPS:
        raise errors.InvalidArgument(f"planned_steps has {len(steps)} steps; the limit is {MAX_PLANNED_STEPS}")
    for index, step in enumerate(steps):
        validation.check_name(f"planned_steps[{index}].step_name", step.step_name)
        validation.check_name(f"planned_steps[{index}].display_name", step.display_name, required=False)
    return convert.planned_steps_json(steps)


__all__ = ["EngineStateRpcs", "MAX_ENGINE_LIST", "MAX_PLANNED_STEPS", "planned_steps_from_proto"]
