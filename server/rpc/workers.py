"""Worker dispatch: the workers' task stream (StreamStepTasks, its session in task_session.py),
the connected workers (ListWorkers) and the dispatch defaults per rpc name (SetDispatchDefaults,
ListDispatchDefaults, DeleteDispatchDefaults), which every server's claim reads. The defaults'
values are checked by step_options.py."""

from __future__ import annotations

from typing import Any

import grpc

from workflowstate.v1 import workflow_state_pb2 as pb

from ..core import errors
from ..dispatch.dispatcher import TaskDispatcher
from . import convert, step_options, validation
from .handlers import handles
from .task_session import TaskSession


class WorkerRpcs:
    """The workers' stream and what operators read and set of dispatch, over this server's dispatcher."""

    def __init__(self, dispatcher: TaskDispatcher, *, max_payload_bytes: int) -> None:
        self._dispatcher = dispatcher
        self._max_payload = max_payload_bytes

    @handles("StreamStepTasks")
    async def stream_step_tasks(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await TaskSession(self._dispatcher, context, max_payload_bytes=self._max_payload).run()

    @handles("ListWorkers")
    async def list_workers(self, request: pb.ListWorkersRequest, context: grpc.aio.ServicerContext) -> pb.ListWorkersResponse:
        rows = await self._dispatcher.workers.listed()
        return pb.ListWorkersResponse(workers=[convert.worker_to_proto(row) for row in rows])

    @handles("SetDispatchDefaults")
    async def set_dispatch_defaults(
        self, request: pb.SetDispatchDefaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetDispatchDefaultsResponse:
        if not request.HasField("defaults"):
            raise errors.InvalidArgument("defaults is required")
        defaults = step_options.defaults_from_proto(request.defaults)
        row = await self._dispatcher.defaults.set(defaults)
        return pb.SetDispatchDefaultsResponse(defaults=step_options.defaults_to_proto(row))

    @handles("ListDispatchDefaults")
    async def list_dispatch_defaults(
        self, request: pb.ListDispatchDefaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDispatchDefaultsResponse:
        rows = await self._dispatcher.defaults.list()
        return pb.ListDispatchDefaultsResponse(defaults=[step_options.defaults_to_proto(row) for row in rows])

    @handles("DeleteDispatchDefaults")
    async def delete_dispatch_defaults(
        self, request: pb.DeleteDispatchDefaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDispatchDefaultsResponse:
        rpc_name = validation.check_name("rpc_name", request.rpc_name)
        await self._dispatcher.defaults.delete(rpc_name)
        return pb.DeleteDispatchDefaultsResponse()


__all__ = ["WorkerRpcs"]
