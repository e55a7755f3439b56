"""The dispatch defaults' RPCs of WorkflowStateService: SetDispatchDefaults,
ListDispatchDefaults, DeleteDispatchDefaults. A mixin of the servicer (servicer.py), as
engine_servicer.py is; the values are checked by step_options.py and stored by the dispatcher's
defaults store, which every server's claim reads.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..dispatch.dispatcher import TaskDispatcher
from . import step_options, validation


class _Servicer(Protocol):
    """What the mixin uses of the servicer it is part of."""

    _dispatcher: TaskDispatcher

    async def _call(self, context: grpc.aio.ServicerContext, call: Awaitable[Any]) -> Any: ...


class DispatchDefaultsRpcs:
    """SetDispatchDefaults, ListDispatchDefaults, DeleteDispatchDefaults; registered by the servicer."""

    async def set_dispatch_defaults(
        self: _Servicer, request: pb.SetDispatchDefaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetDispatchDefaultsResponse:
        if not request.HasField("defaults"):
            raise errors.InvalidArgument("defaults is required")
        defaults = step_options.defaults_from_proto(request.defaults)
        row = await self._call(context, self._dispatcher.defaults.set(defaults))
        return pb.SetDispatchDefaultsResponse(defaults=step_options.defaults_to_proto(row))

    async def list_dispatch_defaults(
        self: _Servicer, request: pb.ListDispatchDefaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDispatchDefaultsResponse:
        rows = await self._call(context, self._dispatcher.defaults.list())
        return pb.ListDispatchDefaultsResponse(defaults=[step_options.defaults_to_proto(row) for row in rows])

    async def delete_dispatch_defaults(
        self: _Servicer, request: pb.DeleteDispatchDefaultsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteDispatchDefaultsResponse:
        rpc_name = validation.check_name("rpc_name", request.rpc_name)
        await self._call(context, self._dispatcher.defaults.delete(rpc_name))
        return pb.DeleteDispatchDefaultsResponse()


__all__ = ["DispatchDefaultsRpcs"]
