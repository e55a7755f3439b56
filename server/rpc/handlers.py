"""The one way an RPC gets its handler: a capability marks each of its methods with the RPC it
answers (`@handles("CreateRun")`), and the servicer gathers them into one table keyed by RPC name,
checked against the service's descriptor when the server starts: an RPC without a handler, or a
handler of no RPC, stops the start naming them. The servicer serves every RPC through that table,
and Batch runs its operations through the same entries, so a batched call and the separate one
are one function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from ..db.database import with_deadline

# The context of a call of any RPC: code that serves every RPC (the handler table, the wrappers
# around each call, the interceptors) knows the messages' types only at run time; each handler
# declares its own.
AnyContext = grpc.aio.ServicerContext[Any, Any]

# A handler: the request (or the request iterator of a stream) and the call's context.
Handler = Callable[[Any, AnyContext], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

# The attribute `handles` sets on a method: the name of the RPC it answers.
_RPC_NAME = "__rpc_name__"


def handles(rpc: str) -> Callable[[F], F]:
    """Mark a capability's method as the handler of `rpc` (its name in the proto)."""

    def mark(method: F) -> F:
        setattr(method, _RPC_NAME, rpc)
        return method

    return mark


def handled_by(kind: type) -> dict[str, str]:
    """The RPCs a capability class answers: RPC name -> the name of its method."""
    marked = ((attribute, getattr(getattr(kind, attribute), _RPC_NAME, None)) for attribute in dir(kind))
    return {rpc: attribute for attribute, rpc in marked if isinstance(rpc, str)}


def handlers_of(capabilities: Iterable[object]) -> dict[str, Handler]:
    """The table of every marked method of `capabilities`, by RPC name; two handlers of one RPC stop it."""
    table: dict[str, Handler] = {}
    owner: dict[str, str] = {}
    for capability in capabilities:
        kind = type(capability)
        for rpc, attribute in handled_by(kind).items():
            if rpc in table:
                raise RuntimeError(f"two handlers of the RPC {rpc}: {owner[rpc]} and {kind.__name__}.{attribute}")
            table[rpc] = getattr(capability, attribute)
            owner[rpc] = f"{kind.__name__}.{attribute}"
    return table


def check_complete(table: Mapping[str, object], service: ServiceDescriptor) -> None:
    """Stop the start unless `table` holds exactly one handler per RPC of `service`."""
    rpcs = {method.name for method in service.methods}
    missing, unknown = sorted(rpcs - set(table)), sorted(set(table) - rpcs)
    if missing or unknown:
        raise RuntimeError(
            f"the handlers do not match {service.full_name}: RPCs without a handler {missing}, handlers of no RPC {unknown}"
        )


async def within_deadline(handler: Handler, request: Any, context: AnyContext) -> Any:
    """Run a unary handler within its call's deadline: its statements give up a margin before it
    (with_deadline). Applied here once, for every unary RPC and every Batch operation."""
    return await with_deadline(handler(request, context), context.time_remaining())


__all__ = ["AnyContext", "Handler", "check_complete", "handled_by", "handlers_of", "handles", "within_deadline"]
