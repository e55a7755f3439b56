"""How the client's gRPC channel is configured, shared by the sync and async client.

Retries are not a loop in our code: they are declared in the channel's service
config and done by gRPC itself, which knows whether a request may have reached
the server and keeps the call's deadline across attempts.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor_pb2 import MethodOptions

from workflowstate import v1 as pb

_SERVICE = pb.SERVICE_DESCRIPTOR

# Only RPCs that are safe to send twice may be retried: a retry can follow a request the server
# did execute but whose reply was lost. The contract says which are, once: each RPC's standard
# `idempotency_level` option (NO_SIDE_EFFECTS for reads, IDEMPOTENT for writes whose repeat answers
# as the first attempt did), with the reason of each decision beside it in the proto. Streams are
# never retried by gRPC once a message got through: the Worker, leases and watch_run resume them.
_SAFE_TO_REPEAT = (MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT)
RETRYABLE_METHODS: tuple[str, ...] = tuple(
    method.name
    for method in _SERVICE.methods
    if not (method.client_streaming or method.server_streaming) and method.GetOptions().idempotency_level in _SAFE_TO_REPEAT
)


@dataclass(frozen=True)
class RetryPolicy:
    """The gRPC retry policy of the retryable RPCs (see gRFC A6 for the semantics)."""

    max_attempts: int = 5
    """How many times one call is sent at most, the first attempt included."""

    initial_backoff_seconds: float = 0.1
    """Upper bound of the random wait before the first retry."""

    max_backoff_seconds: float = 2.0
    """Upper bound of the random wait before any retry."""

    backoff_multiplier: float = 2.0
    """Growth of the wait's upper bound after each retry."""

    retryable_status_codes: tuple[str, ...] = ("UNAVAILABLE",)
    """gRPC codes worth retrying: only those that mean "try again later"."""


DEFAULT_RETRY_POLICY = RetryPolicy()


def service_config(policy: RetryPolicy = DEFAULT_RETRY_POLICY) -> str:
    """The channel's service config (JSON) that applies ``policy`` to the retryable RPCs."""
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [
                        {"service": _SERVICE.full_name, "method": method}
                        for method in RETRYABLE_METHODS
                    ],
                    "retryPolicy": {
                        "maxAttempts": policy.max_attempts,
                        "initialBackoff": f"{policy.initial_backoff_seconds}s",
                        "maxBackoff": f"{policy.max_backoff_seconds}s",
                        "backoffMultiplier": policy.backoff_multiplier,
                        "retryableStatusCodes": list(policy.retryable_status_codes),
                    },
                }
            ]
        }
    )


def channel_options(*, retry: bool, extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The channel options of a client: ours, then the caller's, which win on the same key."""
    # Replies are bounded by the server's payload limit, not by gRPC's default 4 MiB, which a
    # Batch of large runs would pass although each run alone fits.
    options: dict[str, Any] = {"grpc.max_receive_message_length": -1}
    if retry:
        options["grpc.enable_retries"] = 1
        options["grpc.service_config"] = service_config()
    options.update(extra)
    return list(options.items())


def separate_connections(connections: int, extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The caller's options, plus, for more than one connection, a subchannel pool per channel:
    channels to one target share one connection otherwise."""
    own = [("grpc.use_local_subchannel_pool", 1)] if connections > 1 else []
    return [*own, *extra]


def channel_credentials(
    tls: bool | grpc.ChannelCredentials,
) -> grpc.ChannelCredentials | None:
    """The credentials to open a secure channel with, or ``None`` for an insecure one.

    ``True`` means TLS with the system's root certificates; credentials given
    by the caller (client certificates, custom roots) are used as they are.
    """
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    return grpc.ssl_channel_credentials() if tls else None


TOKEN_VARIABLE = "WORKFLOWSTATE_TOKEN"
"""The environment variable a client takes its bearer token from when given none."""


def bearer(token: str | None) -> tuple[str, str] | None:
    """The metadata entry that carries ``token`` (from WORKFLOWSTATE_TOKEN when ``None``), or
    ``None`` when there is no token. ``ValueError`` for a token no header can carry; the message
    never shows the token."""
    if token is None:
        token = os.environ.get(TOKEN_VARIABLE) or None
        if token is None:
            return None
    if not isinstance(token, str) or not token or not all("!" <= character <= "~" for character in token):
        raise ValueError(
            "token must be a non-empty string of printable ASCII characters without spaces "
            f"(got {len(token) if isinstance(token, str) else type(token).__name__} characters); "
            "tokens of `workflowstate token new` are"
        )
    return ("authorization", f"Bearer {token}")


class InsecureTokenWarning(UserWarning):
    """A client sends its bearer token without TLS to a server on another machine: anyone on the
    way can read the token and call the server as its holder."""


def _target_host(target: str) -> str | None:
    """The host a gRPC target names ('dns:///h:1', 'ipv4:h:1', '[::1]:1', 'h:1', 'h'), or None
    for a local socket ('unix:...', 'unix-abstract:...')."""
    if target.startswith(("unix:", "unix-abstract:")):
        return None
    address = target
    for scheme in ("dns:", "ipv4:", "ipv6:"):
        if address.startswith(scheme):
            address = address[len(scheme) :].rpartition("/")[2].split(",")[0]
            break
    if address.startswith("["):
        return address[1:].partition("]")[0]
    return address.rpartition(":")[0] if address.count(":") == 1 else address


def is_loopback_target(target: str) -> bool:
    """Whether `target` stays on this machine: a Unix socket, localhost, 127.0.0.0/8 or ::1."""
    host = _target_host(target)
    if host is None:
        return True
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any machine


def warn_if_token_in_clear(target: str, credentials: grpc.ChannelCredentials | None, authorization: tuple[str, str] | None) -> None:
    """Warn (InsecureTokenWarning) when a token would go without TLS to another machine."""
    if authorization is None or credentials is not None or is_loopback_target(target):
        return
    warnings.warn(
        f"the token is sent without TLS to {target}, which is not this machine: anyone on the network "
        "can read it; pass tls=True (or credentials), or reach the server over 127.0.0.1 or a Unix socket",
        InsecureTokenWarning,
        stacklevel=3,
    )


def _with_entry(metadata: Any, entry: tuple[str, str]) -> Any:
    return (*(metadata or ()), entry)


class _SyncCallDetails(
    collections.namedtuple("_SyncCallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    """grpc.ClientCallDetails is abstract: the blocking channel's interceptors need a concrete one."""


class _SyncBearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the token's metadata to every call of a blocking channel, unary or stream."""

    def __init__(self, entry: tuple[str, str]) -> None:
        self._entry = entry

    def _details(self, details: Any) -> _SyncCallDetails:
        return _SyncCallDetails(
            details.method,
            details.timeout,
            _with_entry(details.metadata, self._entry),
            details.credentials,
            details.wait_for_ready,
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


def _aio_details(details: grpc.aio.ClientCallDetails, entry: tuple[str, str]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*_with_entry(details.metadata, entry))
    return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)


# grpc.aio files an interceptor under the first of the four kinds it is, so one class per kind.
class _AioBearerUnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, entry: tuple[str, str]) -> None:
        self._entry = entry

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_aio_details(client_call_details, self._entry), request)


class _AioBearerUnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, entry: tuple[str, str]) -> None:
        self._entry = entry

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_aio_details(client_call_details, self._entry), request)


class _AioBearerStreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, entry: tuple[str, str]) -> None:
        self._entry = entry

    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_aio_details(client_call_details, self._entry), request_iterator)


class _AioBearerStreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, entry: tuple[str, str]) -> None:
        self._entry = entry

    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(_aio_details(client_call_details, self._entry), request_iterator)


def open_channel_async(
    target: str,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]],
    token: tuple[str, str] | None,
) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel; with a token, every call and stream on it carries it.

    No interceptor without a token: they cost CPU on every call.
    """
    interceptors = (
        [kind(token) for kind in (_AioBearerUnaryUnary, _AioBearerUnaryStream, _AioBearerStreamUnary, _AioBearerStreamStream)]
        if token is not None
        else None
    )
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)


def open_channel_sync(
    target: str,
    credentials: grpc.ChannelCredentials | None,
    options: Sequence[tuple[str, Any]],
    token: tuple[str, str] | None,
) -> grpc.Channel:
    """A blocking channel; with a token, every call and stream on it carries it."""
    if credentials is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        channel = grpc.secure_channel(target, credentials, options=options)
    return grpc.intercept_channel(channel, _SyncBearer(token)) if token is not None else channel
