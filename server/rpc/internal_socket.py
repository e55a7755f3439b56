"""The dashboard's private way in: under mutual TLS without tokens, only the dashboard may use it.

The dashboard calls its server's API over a Unix socket (in a folder only the server's user may
enter), which has no TLS. With --auth-tokens its calls carry the user's token like any other; with
mutual TLS alone, the client certificate is the only check, and the socket would let any process of
the same user in without one. So the server then makes a secret at start and hands it to its
dashboard only, which sends it as its bearer token; a call arriving over a Unix socket without it is
refused UNAUTHENTICATED. Calls over TCP are the TLS handshake's to judge and pass unchanged.

The peer is known only once the call runs (a HandlerCallDetails does not carry it), so calls
without the secret get their handler wrapped in the check; calls with it go straight through.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import grpc

from .auth import Refused
from .handlers import AnyContext, Handler

AUTHORIZATION = "authorization"
REFUSAL = (
    "this server's internal socket serves its own dashboard only: call the server's TCP address "
    "(with a client certificate of its CA) instead"
)
# Refused as the auth interceptor refuses a call without a known token: the same code, reason and status details.
_REFUSED = Refused(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)

# The messages of the intercepted RPC: the guard hands back a handler of the same RPC.
Request = TypeVar("Request")
Response = TypeVar("Response")

# A behavior that answers a stream by yielding its replies (as grpc_health's Watch does), where the
# servicer's handlers write them to the context.
StreamBehavior = Callable[[Any, AnyContext], AsyncIterator[Any]]


class InternalSocketGuard(grpc.aio.ServerInterceptor):
    """Refuses calls over a Unix socket that do not carry the dashboard's secret."""

    def __init__(self, secret: str) -> None:
        self._expected = f"Bearer {secret}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Request, Response] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Request, Response] | None:
        handler = await continuation(handler_call_details)
        if handler is None or self._carries_secret(handler_call_details.invocation_metadata):
            return handler
        return _tcp_only(handler)

    def _carries_secret(self, metadata: Any) -> bool:
        values = [value for key, value in metadata or () if key == AUTHORIZATION]
        return len(values) == 1 and isinstance(values[0], str) and hmac.compare_digest(values[0].encode(), self._expected)


async def _refuse_unix_peer(context: AnyContext) -> None:
    if context.peer().startswith("unix:"):
        await context.abort(_REFUSED.code, _REFUSED.message, _REFUSED.status.trailing_metadata())


def _tcp_only(handler: grpc.RpcMethodHandler[Request, Response]) -> grpc.RpcMethodHandler[Request, Response]:
    """`handler`, behind the peer check, of the same shape (and the same way of answering streams)."""
    shape = (handler.request_streaming, handler.response_streaming)
    behavior = {
        (False, False): handler.unary_unary,
        (False, True): handler.unary_stream,
        (True, False): handler.stream_unary,
        (True, True): handler.stream_stream,
    }[shape]
    assert behavior is not None
    # types-grpcio types the behaviors as the sync server's (returning the response, taking
    # grpc.ServicerContext); on this aio server each is a coroutine function or an async generator
    # function of the request (or the request iterator) and the aio context.
    guarded: Callable[..., Any]
    if inspect.isasyncgenfunction(behavior):
        replies = cast(StreamBehavior, behavior)

        async def guarded_stream(request: Any, context: AnyContext) -> AsyncIterator[Any]:
            await _refuse_unix_peer(context)
            async for reply in replies(request, context):
                yield reply

        guarded = guarded_stream
    else:
        answer = cast(Handler, behavior)

        async def guarded_call(request: Any, context: AnyContext) -> Any:
            await _refuse_unix_peer(context)
            return await answer(request, context)

        guarded = guarded_call
    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[shape]
    return make(guarded, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
