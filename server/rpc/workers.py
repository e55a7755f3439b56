"""Worker dispatch: the workers' task stream (StreamStepTasks, its session in task_session.py),
the connected workers (ListWorkers) and the dispatch defaults per rpc name (SetDispatchDefaults,
ListDispatchDefaults, DeleteDispatchDefaults), which every server's claim reads. The defaults'
values are checked by step_options.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..dispatch.defaults import DefaultsStore
from ..dispatch.workers import WorkerStreams
from . import convert, step_options, validation
from .handlers import handles
from .task_session import TaskSession


class WorkerRpcs:
    """The workers' stream and what operators read and set of dispatch."""

    def __init__(
        self,
        task_sessions: Callable[[grpc.aio.ServicerContext[pb.StreamStepTasksRequest, pb.StreamStepTasksResponse]], TaskSession],
        workers: WorkerStreams,
        defaults: DefaultsStore,
    ) -> None:
        # Opens each worker stream's session with its collaborators (assembled in ops/app.py).
        self._task_sessions = task_sessions
        self._workers = workers
        self._defaults = defaults

    @handles("StreamStepTasks")
    async def stream_step_tasks(
        self,
        request_iterator: AsyncIterator[pb.StreamStepTasksRequest],
        context: grpc.aio.ServicerContext[pb.StreamStepTasksRequest, pb.StreamStepTasksResponse],
    ) -> None:
        await self._task_sessions(context).run()

    @handles("ListWorkers")
    async def list_workers(
        self, request: pb.ListWorkersRequest, context: grpc.aio.ServicerContext[pb.ListWorkersRequest, pb.ListWorkersResponse]
    ) -> pb.ListWorkersResponse:
        rows = await self._workers.listed()
        return pb.ListWorkersResponse(workers=[convert.worker_to_proto(row) for row in rows])

    @handles("SetDispatchDefaults")
    async def set_dispatch_defaults(
        self,
        request: pb.SetDispatchDefaultsRequest,
        context: grpc.aio.ServicerContext[pb.SetDispatchDefaultsRequest, pb.SetDispatchDefaultsResponse],
    ) -> pb.SetDispatchDefaultsResponse:
        if not request.HasField("defaults"):
            raise errors.InvalidArgument("defaults is required", field="defaults")
        defaults = step_options.defaults_from_proto(request.defaults)
        row = await self._defaults.set(defaults)
        return pb.SetDispatchDefaultsResponse(defaults=step_options.defaults_to_proto(row))

    @handles("ListDispatchDefaults")
    async def list_dispatch_defaults(
        self,
        request: pb.ListDispatchDefaultsRequest,
        context: grpc.aio.ServicerContext[pb.ListDispatchDefaultsRequest, pb.ListDispatchDefaultsResponse],
    ) -> pb.ListDispatchDefaultsResponse:
        rows = await self._defaults.list()
        return pb.ListDispatchDefaultsResponse(defaults=[step_options.defaults_to_proto(row) for row in rows])

    @handles("DeleteDispatchDefaults")
    async def delete_dispatch_defaults(
        self,
        request: pb.DeleteDispatchDefaultsRequest,
        context: grpc.aio.ServicerContext[pb.DeleteDispatchDefaultsRequest, pb.DeleteDispatchDefaultsResponse],
    ) -> pb.DeleteDispatchDefaultsResponse:
        rpc_name = validation.check_name("rpc_name", request.rpc_name)
        await self._defaults.delete(rpc_name)
        return pb.DeleteDispatchDefaultsResponse()


__all__ = ["WorkerRpcs"]
