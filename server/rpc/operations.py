"""Operating runs: the operators' lists (ListRuns, ListSteps, ListWorkflows), cancels (CancelRun,
CancelRuns), deletes (DeleteRun, DeleteRuns) and the retention policies that erase finished runs
(SetRetentionPolicy, ListRetentionPolicies, DeleteRetentionPolicy)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..retention.store import RetentionStore
from ..state.catalog import RunCatalog, RunPosition
from ..state.transitions import OPEN_RUN_STATUSES, TERMINAL_RUN_STATUSES, RunStatus, RunVia, run_sources, run_target
from . import convert, page_tokens, validation
from .handlers import handles
from .reply_bounds import ReplyBound
from .run_filters import run_filter_from_proto


class OperationRpcs:
    """The operators' calls, over the run catalog and the retention store; `runs_finished(run_ids)`
    tells this server's worker streams that those runs were cancelled."""

    def __init__(
        self,
        catalog: RunCatalog,
        retention: RetentionStore,
        reply_bound: ReplyBound,
        runs_finished: Callable[[frozenset[UUID]], None],
    ) -> None:
        self._catalog = catalog
        self._retention = retention
        self._reply_bound = reply_bound
        self._runs_finished = runs_finished

    @handles("ListRuns")
    async def list_runs(
        self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext[pb.ListRunsRequest, pb.ListRunsResponse]
    ) -> pb.ListRunsResponse:
        runs = run_filter_from_proto("filter", request.filter)
        newest_first = _newest_first(request.order_by)
        page_size = page_tokens.page_size(request.page_size)
        full = _full_view(request.view)
        query = page_tokens.runs_query(runs, newest_first)
        after = page_tokens.decode_run_position(request.page_token, query)

        def fetch(after: RunPosition | None, limit: int) -> Awaitable[list[Any]]:
            return self._catalog.list_runs(runs, newest_first=newest_first, after=after, limit=limit, full=full)

        # The basic view carries no payloads but its error's message and code.
        row_bytes = self._reply_bound.item_bytes if full else self._reply_bound.row_bytes(payload_fields=1)
        page, last = await self._reply_bound.page(
            fetch, RunPosition.of, convert.run_to_proto, after=after, page_size=page_size, row_bytes=row_bytes
        )
        next_token = page_tokens.encode_run_position(last, query) if last is not None else ""
        return pb.ListRunsResponse(runs=page, next_page_token=next_token)

    @handles("ListSteps")
    async def list_steps(
        self, request: pb.ListStepsRequest, context: grpc.aio.ServicerContext[pb.ListStepsRequest, pb.ListStepsResponse]
    ) -> pb.ListStepsResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        rows = await self._catalog.list_steps(run_id)
        return pb.ListStepsResponse(steps=[convert.step_to_proto(row) for row in rows])

    @handles("ListWorkflows")
    async def list_workflows(
        self,
        request: pb.ListWorkflowsRequest,
        context: grpc.aio.ServicerContext[pb.ListWorkflowsRequest, pb.ListWorkflowsResponse],
    ) -> pb.ListWorkflowsResponse:
        counts = await self._catalog.count_runs()
        return pb.ListWorkflowsResponse(
            workflows=[
                pb.WorkflowSummary(
                    workflow=workflow,
                    run_counts=[pb.RunStatusCount(status=convert.RUN_STATUS_TO_PROTO[status], run_count=n) for status, n in by_status.items()],
                )
                for workflow, by_status in counts.items()
            ]
        )

    @handles("CancelRun")
    async def cancel_run(
        self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext[pb.CancelRunRequest, pb.CancelRunResponse]
    ) -> pb.CancelRunResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        reason = _reason(request.reason)
        row = await self._catalog.cancel_run(run_id, reason)
        # This server's worker streams hear at once; the others through the NOTIFY of the trigger function announce_finished_run.
        self._runs_finished(frozenset((run_id,)))
        return pb.CancelRunResponse(run=convert.run_to_proto(row))

    @handles("CancelRuns")
    async def cancel_runs(
        self, request: pb.CancelRunsRequest, context: grpc.aio.ServicerContext[pb.CancelRunsRequest, pb.CancelRunsResponse]
    ) -> pb.CancelRunsResponse:
        runs = run_filter_from_proto("filter", request.filter)
        cancellable = {RunStatus(status) for status in run_sources(run_target(RunVia.CANCEL), RunVia.CANCEL)}
        if runs.statuses - cancellable:
            names = " or ".join(convert.RUN_STATUS_TO_PROTO_NAME[status] for status in sorted(cancellable))
            raise errors.InvalidArgument(f"filter.statuses may only hold {names} (or be empty): only runs not finished can be cancelled", field="filter.statuses")
        max_runs = _max_runs(request.max_runs)
        reason = _reason(request.reason)
        run_ids = await self._catalog.cancel_runs(runs, max_runs, reason)
        if run_ids:
            self._runs_finished(frozenset(run_ids))
        return pb.CancelRunsResponse(cancelled_count=len(run_ids), run_ids=[str(run_id) for run_id in run_ids])

    @handles("DeleteRun")
    async def delete_run(
        self, request: pb.DeleteRunRequest, context: grpc.aio.ServicerContext[pb.DeleteRunRequest, pb.DeleteRunResponse]
    ) -> pb.DeleteRunResponse:
        run_id = validation.parse_uuid("run_id", request.run_id)
        await self._catalog.delete_run(run_id, force=request.force)
        return pb.DeleteRunResponse()

    @handles("DeleteRuns")
    async def delete_runs(
        self, request: pb.DeleteRunsRequest, context: grpc.aio.ServicerContext[pb.DeleteRunsRequest, pb.DeleteRunsResponse]
    ) -> pb.DeleteRunsResponse:
        runs = run_filter_from_proto("filter", request.filter)
        if not request.force and runs.statuses and runs.statuses <= OPEN_RUN_STATUSES:
            raise errors.InvalidArgument(
                "filter.statuses holds only statuses of runs not finished (RUN_STATUS_RUNNING, RUN_STATUS_SUSPENDED) but force is false: "
                "those runs are erased only with force",
                field="filter.statuses",
            )
        if not 1 <= request.max_runs <= MAX_BULK_DELETES:
            raise errors.InvalidArgument(f"max_runs must be 1 to {MAX_BULK_DELETES}, got {request.max_runs}", field="max_runs", limit=MAX_BULK_DELETES)
        run_ids = await self._catalog.delete_runs(runs, request.max_runs, force=request.force)
        return pb.DeleteRunsResponse(deleted_count=len(run_ids), run_ids=[str(run_id) for run_id in run_ids])

    @handles("SetRetentionPolicy")
    async def set_retention_policy(
        self,
        request: pb.SetRetentionPolicyRequest,
        context: grpc.aio.ServicerContext[pb.SetRetentionPolicyRequest, pb.SetRetentionPolicyResponse],
    ) -> pb.SetRetentionPolicyResponse:
        workflow = validation.check_name("workflow", request.workflow, required=False) or None
        statuses = {convert.run_status_from_proto("statuses", number) for number in request.statuses}
        if statuses - TERMINAL_RUN_STATUSES:
            raise errors.InvalidArgument(
                "statuses may only hold finished statuses (RUN_STATUS_COMPLETED, RUN_STATUS_FAILED, RUN_STATUS_CANCELLED): "
                "retention never erases a run that is not finished (running or suspended)",
                field="statuses",
            )
        if not request.HasField("keep"):
            raise errors.InvalidArgument("keep is required", field="keep")
        keep = convert.duration_from_proto("keep", request.keep)
        if not timedelta(0) < keep <= MAX_RETENTION_KEEP:
            raise errors.InvalidArgument(f"keep must be positive and at most {MAX_RETENTION_KEEP.days} days, got {keep}", field="keep")
        row = await self._retention.set_policy(workflow, statuses, keep)
        return pb.SetRetentionPolicyResponse(policy=convert.retention_policy_to_proto(row))

    @handles("ListRetentionPolicies")
    async def list_retention_policies(
        self,
        request: pb.ListRetentionPoliciesRequest,
        context: grpc.aio.ServicerContext[pb.ListRetentionPoliciesRequest, pb.ListRetentionPoliciesResponse],
    ) -> pb.ListRetentionPoliciesResponse:
        rows = await self._retention.list_policies()
        return pb.ListRetentionPoliciesResponse(policies=[convert.retention_policy_to_proto(row) for row in rows])

    @handles("DeleteRetentionPolicy")
    async def delete_retention_policy(
        self,
        request: pb.DeleteRetentionPolicyRequest,
        context: grpc.aio.ServicerContext[pb.DeleteRetentionPolicyRequest, pb.DeleteRetentionPolicyResponse],
    ) -> pb.DeleteRetentionPolicyResponse:
        if request.policy_id <= 0:
            raise errors.InvalidArgument(f"policy_id must be positive, got {request.policy_id}", field="policy_id")
        await self._retention.delete_policy(request.policy_id)
        return pb.DeleteRetentionPolicyResponse()


def _newest_first(order_by: int) -> bool:
    if order_by in (pb.RUN_ORDER_UNSPECIFIED, pb.RUN_ORDER_CREATE_TIME_DESC):
        return True
    if order_by == pb.RUN_ORDER_CREATE_TIME_ASC:
        return False
    raise errors.InvalidArgument(f"order_by must be RUN_ORDER_CREATE_TIME_DESC or RUN_ORDER_CREATE_TIME_ASC, got {order_by}", field="order_by")


def _full_view(view: int) -> bool:
    if view in (pb.RUN_VIEW_UNSPECIFIED, pb.RUN_VIEW_BASIC):
        return False
    if view == pb.RUN_VIEW_FULL:
        return True
    raise errors.InvalidArgument(f"view must be RUN_VIEW_BASIC or RUN_VIEW_FULL, got {view}", field="view")


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
        raise errors.InvalidArgument(f"max_runs must be 1 to {MAX_BULK_RUNS}, got {max_runs}", field="max_runs", limit=MAX_BULK_RUNS)
    return max_runs


__all__ = ["MAX_BULK_DELETES", "MAX_BULK_RUNS", "MAX_REASON_LENGTH", "MAX_RETENTION_KEEP", "OperationRpcs"]
