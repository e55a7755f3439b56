"""Engine state: what a workflow engine such as Pikku keeps beside runs and steps (a step's
suspension, child run and branch, its claim, the run's state variables, workflow versions, and the
reads that find stalled runs and undispatched steps). Validate the request into Python values, let
the store make the change in one statement, turn the row into the response.
"""

from __future__ import annotations

from datetime import datetime

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..state.catalog import RunCatalog
from ..state.outcomes import Outcome
from ..state.store import StateStore
from ..state.transitions import VERSION_START
from ..state.versions import VersionStore
from . import caller, convert, validation
from .fences import fence_of
from .handlers import handles
from .payloads import Payloads

# ListStalledRuns' max_runs and ListUndispatchedSteps' max_steps (as the proto says).
MAX_ENGINE_LIST = 1000


class EngineRpcs:
    """SetStepSuspended ... ListUndispatchedSteps, over the state store, the run catalog and the versions."""

    def __init__(self, store: StateStore, catalog: RunCatalog, versions: VersionStore, payloads: Payloads) -> None:
        self._store = store
        self._catalog = catalog
        self._versions = versions
        self._payloads = payloads

    @handles("SetStepSuspended")
    async def set_step_suspended(
        self,
        request: pb.SetStepSuspendedRequest,
        context: grpc.aio.ServicerContext[pb.SetStepSuspendedRequest, pb.SetStepSuspendedResponse],
    ) -> pb.SetStepSuspendedResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        row = await self._store.set_step_suspended(step_id, fence=fence_of(request))
        return pb.SetStepSuspendedResponse(step=convert.step_to_proto(row))

    @handles("SetStepChildRun")
    async def set_step_child_run(
        self,
        request: pb.SetStepChildRunRequest,
        context: grpc.aio.ServicerContext[pb.SetStepChildRunRequest, pb.SetStepChildRunResponse],
    ) -> pb.SetStepChildRunResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        child_run_id = validation.parse_uuid("child_run_id", request.child_run_id)
        row = await self._store.set_step_child_run(step_id, child_run_id, fence=fence_of(request))
        return pb.SetStepChildRunResponse(step=convert.step_to_proto(row))

    @handles("SetStepBranch")
    async def set_step_branch(
        self,
        request: pb.SetStepBranchRequest,
        context: grpc.aio.ServicerContext[pb.SetStepBranchRequest, pb.SetStepBranchResponse],
    ) -> pb.SetStepBranchResponse:
        step_id = validation.parse_uuid("step_id", request.step_id)
        branch_key = validation.check_name("branch_key", request.branch_key)
        row = await self._store.set_step_branch(step_id, branch_key, fence=fence_of(request))
        return pb.SetStepBranchResponse(step=convert.step_to_proto(row))

    @handles("ClaimStep")
    async def claim_step(
        self, request: pb.ClaimStepRequest, context: grpc.aio.ServicerContext[pb.ClaimStepRequest, pb.ClaimStepResponse]
    ) -> pb.ClaimStepResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        step_name = validation.check_name("step_name", request.step_name)
        rpc_name = validation.check_name("rpc_name", request.rpc_name, required=False)
        fence = fence_of(request)
        row = await self._store.claim_step(run_id, step_name, rpc_name, fence=fence, takes_worker_tasks=caller.takes_worker_tasks())
        return pb.ClaimStepResponse(claimed=row["outcome"] == Outcome.CHANGED, step=convert.step_to_proto(row))

    @handles("UpdateRunState")
    async def update_run_state(
        self,
        request: pb.UpdateRunStateRequest,
        context: grpc.aio.ServicerContext[pb.UpdateRunStateRequest, pb.UpdateRunStateResponse],
    ) -> pb.UpdateRunStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        name = validation.check_name("name", request.name)
        value_json = self._payloads.json("value_json", request.value_json)
        fence = fence_of(request)
        await self._store.update_run_state(run_id, name, value_json, max_bytes=self._payloads.max_bytes, fence=fence)
        return pb.UpdateRunStateResponse()

    @handles("GetRunState")
    async def get_run_state(
        self, request: pb.GetRunStateRequest, context: grpc.aio.ServicerContext[pb.GetRunStateRequest, pb.GetRunStateResponse]
    ) -> pb.GetRunStateResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        state_json = await self._store.get_run_state(run_id)
        return pb.GetRunStateResponse(state_json=state_json)

    @handles("UpsertWorkflowVersion")
    async def upsert_workflow_version(
        self,
        request: pb.UpsertWorkflowVersionRequest,
        context: grpc.aio.ServicerContext[pb.UpsertWorkflowVersionRequest, pb.UpsertWorkflowVersionResponse],
    ) -> pb.UpsertWorkflowVersionResponse:
        workflow = validation.check_name("workflow", request.workflow)
        graph_hash = validation.check_name("graph_hash", request.graph_hash)
        graph_json = self._payloads.json("graph_json", request.graph_json)
        source = validation.check_name("source", request.source, required=False)
        status = (
            VERSION_START
            if request.status == pb.WORKFLOW_VERSION_STATUS_UNSPECIFIED
            else convert.version_status_from_proto("status", request.status)
        )
        row = await self._versions.upsert(workflow, graph_hash, graph_json, source, status)
        return pb.UpsertWorkflowVersionResponse(version=convert.version_to_proto(row), created=row["created"])

    @handles("GetWorkflowVersion")
    async def get_workflow_version(
        self,
        request: pb.GetWorkflowVersionRequest,
        context: grpc.aio.ServicerContext[pb.GetWorkflowVersionRequest, pb.GetWorkflowVersionResponse],
    ) -> pb.GetWorkflowVersionResponse:
        workflow = validation.check_name("workflow", request.workflow)
        graph_hash = validation.check_name("graph_hash", request.graph_hash)
        row = await self._versions.get(workflow, graph_hash)
        return pb.GetWorkflowVersionResponse(version=convert.version_to_proto(row))

    @handles("UpdateWorkflowVersionStatus")
    async def update_workflow_version_status(
        self,
        request: pb.UpdateWorkflowVersionStatusRequest,
        context: grpc.aio.ServicerContext[pb.UpdateWorkflowVersionStatusRequest, pb.UpdateWorkflowVersionStatusResponse],
    ) -> pb.UpdateWorkflowVersionStatusResponse:
        workflow = validation.check_name("workflow", request.workflow)
        graph_hash = validation.check_name("graph_hash", request.graph_hash)
        status = convert.version_status_from_proto("status", request.status)
        row = await self._versions.update_status(workflow, graph_hash, status)
        return pb.UpdateWorkflowVersionStatusResponse(version=convert.version_to_proto(row))

    @handles("ListStalledRuns")
    async def list_stalled_runs(
        self,
        request: pb.ListStalledRunsRequest,
        context: grpc.aio.ServicerContext[pb.ListStalledRunsRequest, pb.ListStalledRunsResponse],
    ) -> pb.ListStalledRunsResponse:
        updated_before = _updated_before(request)
        limit = _engine_list_limit("max_runs", request.max_runs)
        run_ids = await self._catalog.list_stalled_runs(updated_before, limit)
        return pb.ListStalledRunsResponse(run_ids=[str(run_id) for run_id in run_ids])

    @handles("ListUndispatchedSteps")
    async def list_undispatched_steps(
        self,
        request: pb.ListUndispatchedStepsRequest,
        context: grpc.aio.ServicerContext[pb.ListUndispatchedStepsRequest, pb.ListUndispatchedStepsResponse],
    ) -> pb.ListUndispatchedStepsResponse:
        updated_before = _updated_before(request)
        limit = _engine_list_limit("max_steps", request.max_steps)
        rows = await self._catalog.list_undispatched_steps(updated_before, limit)
        return pb.ListUndispatchedStepsResponse(steps=[pb.StepRef(run_id=str(row["run_id"]), step_id=str(row["step_id"])) for row in rows])


def _updated_before(request: pb.ListStalledRunsRequest | pb.ListUndispatchedStepsRequest) -> datetime:
    if not request.HasField("updated_before"):
        raise errors.InvalidArgument("updated_before is required", field="updated_before")
    return convert.timestamp_from_proto("updated_before", request.updated_before)


def _engine_list_limit(field: str, value: int) -> int:
    if not 1 <= value <= MAX_ENGINE_LIST:
        raise errors.InvalidArgument(f"{field} must be 1 to {MAX_ENGINE_LIST}, got {value}", field=field, limit=MAX_ENGINE_LIST)
    return value


__all__ = ["MAX_ENGINE_LIST", "EngineRpcs"]
