"""Who may call what: the bearer-token check in front of every RPC, a grpc.aio server interceptor.

A call carries `authorization: Bearer <token>` metadata. The token is hashed (SHA-256) and looked
up in the token file's table (tokens.py); its role must cover the role the RPC requires
(REQUIRED below, the one table of it). A missing, malformed or unknown token is UNAUTHENTICATED; a
known token whose role does not cover the RPC is PERMISSION_DENIED. Neither message nor log line
ever holds the token. Refused calls are counted in workflowstate_rpcs_total like any other.

Installed only with --auth-tokens: without it there is no interceptor and no cost per call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import grpc

from workflowstate.v1 import workflow_state_pb2 as pb

from .batch import RPC_OF
from .tokens import COVERS, Role, token_hash

log = logging.getLogger("workflowstate.server.auth")

SERVICE = pb.DESCRIPTOR.services_by_name["WorkflowStateService"]

# The role each RPC of WorkflowStateService requires, by the RPC's name in the proto. An RPC not
# here requires ADMIN: a new RPC is closed until someone decides who may call it
# (tests/unit/test_auth_table.py fails until it is here or in ADMIN_ONLY).
REQUIRED: dict[str, Role] = {
    "CreateRun": Role.WRITE,
    "GetRun": Role.READ,
    "GetRunHistory": Role.READ,
    "UpdateRunStatus": Role.WRITE,
    "InsertStepState": Role.WRITE,
    "GetStepState": Role.READ,
    "SetStepScheduled": Role.WRITE,
    "SetStepRunning": Role.WRITE,
    "SetStepResult": Role.WRITE,
    "SetStepError": Role.WRITE,
    "CreateRetryAttempt": Role.WRITE,
    # A lease exists to fence writes; holding one blocks other writers.
    "Lease": Role.WRITE,
    "GetLease": Role.READ,
    # Batch itself needs only READ; then each operation needs what its separate RPC needs (see
    # _batch_checked). The client batches concurrent calls by itself, so a read-only client (a
    # dashboard, the CLI) sends reads in Batch calls: requiring WRITE for every Batch would refuse
    # it calls it may make one at a time, and a batch is never more than its operations.
    "Batch": Role.READ,
    # Workers get steps' inputs and report their results through the stream only.
    "StreamStepTasks": Role.WORKER,
    "WatchRun": Role.READ,
    "StreamRunEvents": Role.READ,
    "ListRuns": Role.READ,
    "ListSteps": Role.READ,
    "ListWorkflows": Role.READ,
    "ListLeases": Role.READ,
    "ListRetentionPolicies": Role.READ,
    "ListWorkers": Role.READ,
    # Engine state (issue 12): writes need WRITE (ClaimStep too: it moves the step), reads READ.
    "SetStepSuspended": Role.WRITE,
    "SetStepChildRun": Role.WRITE,
    "SetStepBranch": Role.WRITE,
    "ClaimStep": Role.WRITE,
    "UpdateRunState": Role.WRITE,
    "GetRunState": Role.READ,
    "UpsertWorkflowVersion": Role.WRITE,
    "GetWorkflowVersion": Role.READ,
    "UpdateWorkflowVersionStatus": Role.WRITE,
    "ListStalledRuns": Role.READ,
    "ListUndispatchedSteps": Role.READ,
    # A schedule only creates runs, as CreateRun does (a write token may do that anyway), and
    # pausing or deleting it touches no run; its runs are cancelled or erased by admins only.
    "CreateSchedule": Role.WRITE,
    "ListSchedules": Role.READ,
    "PauseSchedule": Role.WRITE,
    "ResumeSchedule": Role.WRITE,
    "DeleteSchedule": Role.WRITE,
    "ListDispatchDefaults": Role.READ,
}

# RPCs deliberately left to admin tokens only, by leaving them out of REQUIRED: they end or erase
# runs others are working on (a retention policy erases runs on every server, for as long as it stays),
# or change the dispatch of everyone's steps (dispatch defaults: limits, timeouts, retries).
ADMIN_ONLY: frozenset[str] = frozenset(
    {
        "CancelRun",
        "CancelRuns",
        "DeleteRun",
        "DeleteRuns",
        "SetRetentionPolicy",
        "DeleteRetentionPolicy",
        "SetDispatchDefaults",
        "DeleteDispatchDefaults",
    }
)

# The other services on the same port, by full name; None is open to calls without a token.
OTHER_SERVICES: dict[str, Role | None] = {
    # Load balancers and orchestrators probe health without credentials.
    "grpc.health.v1.Health": None,
    # The schema is not secret, but a listing of the API is for those who may use it.
    "grpc.reflection.v1alpha.ServerReflection": Role.READ,
}

AUTHORIZATION = "authorization"
_SCHEME = "bearer "  # RFC 6750: the scheme is case-insensitive


class RefusalMetrics(Protocol):
    def rpc_finished(self, method: str, code: grpc.StatusCode, seconds: float | None) -> None: ...


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def required_role(method: str) -> Role | None:
    """The role a call of `method` (`/package.Service/Method`) requires; None: open to anyone."""
    service, _, name = method.lstrip("/").rpartition("/")
    if service == SERVICE.full_name:
        return REQUIRED.get(name, Role.ADMIN)
    return OTHER_SERVICES.get(service, Role.ADMIN)


def _may(role: Role, required: Role) -> bool:
    return required in COVERS[role]


def _denied(role: Role, rpc: str, required: Role) -> Refused:
    return Refused(
        grpc.StatusCode.PERMISSION_DENIED,
        f"a {role.value!r} token may not call {rpc}: it needs a {required.value!r} or 'admin' token"
        if required is not Role.ADMIN
        else f"a {role.value!r} token may not call {rpc}: it needs an 'admin' token",
    )


class TokenAuth(grpc.aio.ServerInterceptor):
    """Refuses calls whose token is missing, unknown, or of a role that does not cover the RPC."""

    def __init__(self, roles: Mapping[bytes, Role], metrics: RefusalMetrics) -> None:
        # Keyed by the SHA-256 digest of each token. A dict lookup is not constant-time in the
        # bytes it compares, but those bytes are a hash of the presented token, not the secret:
        # timing can at most tell a caller how much of SHA-256(guess) matches a stored hash, and
        # nobody can choose a guess whose hash extends a match, so it leaks nothing about a token.
        self._roles = dict(roles)
        self._metrics = metrics
        # method path -> (short name, required role); only paths of real handlers get in.
        self._methods: dict[str, tuple[str, Role | None]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # no such method: gRPC answers UNIMPLEMENTED
        method = handler_call_details.method  # type: ignore[attr-defined]  # grpc's stubs lack it
        name, required = self._method(method)
        if required is None:
            return handler
        try:
            role = self._role_of(handler_call_details.invocation_metadata)  # type: ignore[attr-defined]
            if name == "Batch" and method.startswith(f"/{SERVICE.full_name}/"):
                return self._batch_checked(handler, role)
            if not _may(role, required):
                raise _denied(role, name, required)
        except Refused as refused:
            return self._refusing(handler, name, refused)
        return handler

    def _method(self, method: str) -> tuple[str, Role | None]:
        known = self._methods.get(method)
        if known is None:
            known = self._methods[method] = (method.rpartition("/")[2], required_role(method))
        return known

    def _role_of(self, metadata: Any) -> Role:
        values = [value for key, value in metadata or () if key == AUTHORIZATION]
        if not values:
            raise Refused(
                grpc.StatusCode.UNAUTHENTICATED,
                "no token: this server requires the metadata 'authorization: Bearer <token>'",
            )
        if len(values) > 1:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "malformed authorization metadata: sent more than once")
        value = values[0]
        if isinstance(value, bytes) or not value[: len(_SCHEME)].lower() == _SCHEME or not value[len(_SCHEME) :].strip():
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "malformed authorization metadata: expected 'Bearer <token>'")
        role = self._roles.get(token_hash(value[len(_SCHEME) :].strip()))
        if role is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "unknown token: this server has no such token (see its --auth-tokens file)")
        return role

    def _count(self, name: str, refused: Refused) -> None:
        # No duration: a refusal says nothing of how long the RPC takes to serve.
        self._metrics.rpc_finished(name, refused.code, None)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request", extra={"rpc": name, "code": refused.code.name, "detail": refused.message})

    def _refusing(self, handler: grpc.RpcMethodHandler, name: str, refused: Refused) -> grpc.RpcMethodHandler:
        """A handler of the same shape as `handler` that answers `refused` without reading the request."""

        async def refuse(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> None:
            self._count(name, refused)
            await context.abort(refused.code, refused.message)

        return _HANDLER_OF_SHAPE[handler.request_streaming, handler.response_streaming](refuse)

    def _batch_checked(self, handler: grpc.RpcMethodHandler, role: Role) -> grpc.RpcMethodHandler:
        """Batch's handler, behind a check that `role` may make every operation of the batch.

        A batch holding an operation the role may not make is refused whole, before anything runs.
        """
        if role in _MAY_MAKE_ANY_BATCH:
            return handler  # nothing to check per operation
        serve = handler.unary_unary
        assert serve is not None

        async def checked(request: pb.BatchRequest, context: grpc.aio.ServicerContext) -> pb.BatchResponse:
            for index, operation in enumerate(request.operations):
                kind = operation.WhichOneof("operation")
                if kind is None:
                    continue  # the servicer refuses the empty operation, naming it
                rpc = RPC_OF[kind]
                required = REQUIRED.get(rpc, Role.ADMIN)
                if not _may(role, required):
                    refused = _denied(role, f"{rpc} (operation {index} of the Batch)", required)
                    self._count("Batch", refused)
                    await context.abort(refused.code, refused.message)
            return await serve(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


# The roles that may make every kind of operation a Batch can carry.
_MAY_MAKE_ANY_BATCH = frozenset(role for role in Role if all(_may(role, REQUIRED.get(rpc, Role.ADMIN)) for rpc in RPC_OF.values()))

_HANDLER_OF_SHAPE: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


__all__ = ["ADMIN_ONLY", "OTHER_SERVICES", "REQUIRED", "TokenAuth", "required_role"]
