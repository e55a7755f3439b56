"""Who may do what: the bearer-token check in front of every RPC, a grpc.aio server interceptor.

A call carries `authorization: Bearer <token>` metadata. The token is hashed (SHA-256) and looked
up in the token file's table (tokens.py). A role is granted effects, not RPCs: ROLE_FOR below is
the one table (each effect, the role it needs), and EFFECT_OF says which effect each RPC has. Every
path to an effect is checked against that one row: an RPC alone, the same call as a Batch
operation (the same function, effect_of), an RPC whose request makes it another effect
(UpdateRunStatus to CANCELLED is a cancel), and a step write whose step turns out to be a worker's
task (decided in its statement, see caller.py). A missing, malformed or unknown token is
UNAUTHENTICATED; a known token whose role does not cover the effect is PERMISSION_DENIED. Neither
message nor log line ever holds the token. Refused calls are counted in workflowstate_rpcs_total
like any other.

Installed only with --auth-tokens: without it there is no interceptor and no cost per call.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import grpc

from workflowstate import v1 as pb

from ..state.transitions import RunVia, run_target
from . import caller, convert
from .batch import RPC_OF
from .handlers import AnyContext, Handler
from .rpc_facts import EFFECT_NAMES, FACTS, SERVICE
from .status import CallStatus
from .tokens import COVERS, Role, token_hash

log = logging.getLogger("workflowstate.server.auth")

# The messages of the intercepted RPC: an interceptor hands back a handler of the same RPC.
Request = TypeVar("Request")
Response = TypeVar("Response")


class Effect(enum.Enum):
    """What a call does to the state, whichever path it takes (an RPC, a Batch operation): a role
    is granted effects, never paths, so two paths to one effect cannot need different roles."""

    READ = "read runs, steps, leases, versions, schedules, settings, workers and events"
    CREATE_RUN = "create a run"
    DRIVE_RUN = "move a run on (any status but CANCELLED) and write its state variables"
    CANCEL_RUN = "cancel a run"
    ERASE_RUNS = "erase runs"
    KEEP_RETENTION = "set or delete retention policies"
    MOVE_STEP = "add or move a step the engine runs"
    CLAIM_STEP = "claim a step the engine runs"
    WORKER_TASK = "take a worker's task or report its result"
    KEEP_VERSIONS = "record workflow versions"
    HOLD_LEASE = "hold a lease"
    KEEP_SCHEDULES = "create, pause, resume or delete schedules"
    SET_DISPATCH_DEFAULTS = "set or delete dispatch defaults"


# THE table: the one role each effect requires (README, Auth, shows it). A token may have an
# effect when its role covers that role (tokens.COVERS).
ROLE_FOR: dict[Effect, Role] = {
    Effect.READ: Role.READ,
    # A schedule only creates runs, as CreateRun does, so it needs what CreateRun needs.
    Effect.CREATE_RUN: Role.WRITE,
    Effect.DRIVE_RUN: Role.WRITE,
    # A cancel ends a run others may be working on and tells its workers to stop, whichever RPC
    # makes it (CancelRun, CancelRuns, UpdateRunStatus to CANCELLED, in a Batch or alone).
    Effect.CANCEL_RUN: Role.ADMIN,
    Effect.ERASE_RUNS: Role.ADMIN,
    # A retention policy erases runs on every server, for as long as it stays.
    Effect.KEEP_RETENTION: Role.ADMIN,
    Effect.MOVE_STEP: Role.WRITE,
    Effect.CLAIM_STEP: Role.WRITE,
    # Workers' tasks are taken and answered through their streams. Not a ladder: a write token
    # cannot take them (nor claim or set the status of a step that is one; see caller.py), and a
    # worker token cannot write state.
    Effect.WORKER_TASK: Role.WORKER,
    Effect.KEEP_VERSIONS: Role.WRITE,
    # A lease exists to fence writes; holding one blocks other writers.
    Effect.HOLD_LEASE: Role.WRITE,
    Effect.KEEP_SCHEDULES: Role.WRITE,
    # Dispatch defaults change the dispatch of everyone's steps (limits, timeouts, retries).
    Effect.SET_DISPATCH_DEFAULTS: Role.ADMIN,
}

# Effect mirrors the contract's RpcEffect value for value (rpc_facts.proto), so the effect an RPC
# declares is one of these and ROLE_FOR stays the one table of roles.
if {effect.name for effect in Effect} != EFFECT_NAMES:
    raise RuntimeError(
        f"auth.Effect and the contract's RpcEffect disagree: only in Effect {sorted({e.name for e in Effect} - EFFECT_NAMES)}, "
        f"only in RpcEffect {sorted(EFFECT_NAMES - {e.name for e in Effect})}"
    )

# The effect of each RPC of WorkflowStateService, by its name in the proto: the effect its
# `rpc_facts` option declares (rpc_facts.py reads it). An RPC that declares none requires ADMIN: a
# new RPC is closed until someone decides what it does (tests/unit/test_auth_table.py fails until
# it does). Two RPCs' effects depend on more than their name: UpdateRunStatus's on its request
# (EFFECT_BY_REQUEST), and those of STEP_WRITES on the step (a worker's task or not). Batch itself
# only reads; then each operation needs what its effect needs (see _batch_checked).
EFFECT_OF: dict[str, Effect] = {name: Effect[facts.effect] for name, facts in FACTS.items() if facts.effect is not None}

# The status a cancel moves a run to, as the proto numbers it.
_CANCELLED = convert.RUN_STATUS_TO_PROTO[run_target(RunVia.CANCEL)]


@dataclass(frozen=True)
class RequestEffect:
    """Another effect than EFFECT_OF's that a call of an RPC has with some requests."""

    effect: Effect
    # How the request makes it, for the refusal ("UpdateRunStatus to RUN_STATUS_CANCELLED"); None
    # when the request has EFFECT_OF's effect.
    made_by: Callable[[Any], str | None]


def _cancels(request: pb.UpdateRunStatusRequest) -> str | None:
    """UpdateRunStatus to the status a cancel moves a run to is a cancel, as CancelRun is."""
    return f"UpdateRunStatus to {pb.RunStatus.Name(_CANCELLED)}" if request.status == _CANCELLED else None


# The RPCs whose request can give them another effect than EFFECT_OF's.
EFFECT_BY_REQUEST: dict[str, RequestEffect] = {"UpdateRunStatus": RequestEffect(Effect.CANCEL_RUN, _cancels)}

# The RPCs that take a worker's task when the step they write is one (held by a worker's stream, or
# due for a connected worker of its rpc name): only their statement can tell, so a caller whose role
# does not cover WORKER_TASK is marked (caller.py) and the statement refuses such a step.
STEP_WRITES: frozenset[str] = frozenset({"ClaimStep", "SetStepRunning", "SetStepResult", "SetStepError"})

# The worker streams: served knowing the fingerprint of their token, so a worker takes back a task
# of a connected stream only under the same worker_id and token (caller.py).
WORKER_STREAMS: frozenset[str] = frozenset({"StreamStepTasks"})

# The role each RPC requires whatever its request: its EFFECT_OF's.
REQUIRED: dict[str, Role] = {rpc: ROLE_FOR[effect] for rpc, effect in EFFECT_OF.items()}


# The other services on the same port, by full name: their effect; None is open to calls without a token.
OTHER_SERVICES: dict[str, Effect | None] = {
    # Load balancers and orchestrators probe health without credentials.
    "grpc.health.v1.Health": None,
    # The schema is not secret, but a listing of the API is for those who may use it.
    "grpc.reflection.v1alpha.ServerReflection": Effect.READ,
}

AUTHORIZATION = "authorization"
_SCHEME = "bearer "  # RFC 6750: the scheme is case-insensitive


class RefusalMetrics(Protocol):
    def rpc_finished(self, method: str, code: grpc.StatusCode, seconds: float | None) -> None: ...


class Refused(Exception):
    """A call refused by its token (none, unknown, or a role without the call's effect)."""

    # The reason of each kind of refusal, as the status details name it.
    REASON_OF = {grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED", grpc.StatusCode.PERMISSION_DENIED: "ROLE_NOT_PERMITTED"}

    def __init__(self, code: grpc.StatusCode, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = CallStatus(code, message, self.REASON_OF[code], metadata or {})


def required_role(method: str) -> Role | None:
    """The role a call of `method` (`/package.Service/Method`) requires whatever its request; None: open to anyone."""
    service, _, name = method.lstrip("/").rpartition("/")
    if service == SERVICE.full_name:
        return REQUIRED.get(name, Role.ADMIN)
    if service not in OTHER_SERVICES:
        return Role.ADMIN
    effect = OTHER_SERVICES[service]
    return None if effect is None else ROLE_FOR[effect]


def effect_of(rpc: str, request: Any) -> tuple[Effect, str]:
    """The effect a call of `rpc` (an RPC of EFFECT_OF) with `request` has, and how to name it in a
    refusal: the one function the check of a call alone and of a Batch's operation both use."""
    by_request = EFFECT_BY_REQUEST.get(rpc)
    made_by = by_request.made_by(request) if by_request is not None else None
    if by_request is not None and made_by is not None:
        return by_request.effect, made_by
    return EFFECT_OF[rpc], f"call {rpc}"


def _may(role: Role, required: Role) -> bool:
    return required in COVERS[role]


def _request_may_refuse(rpc: str, role: Role) -> bool:
    """Whether some request of `rpc` has an effect `role` may not have (then each is checked)."""
    by_request = EFFECT_BY_REQUEST.get(rpc)
    return by_request is not None and not _may(role, ROLE_FOR[by_request.effect])


def _denied(role: Role, what: str, required: Role) -> Refused:
    """The refusal of a `role` token doing `what` ("call CreateRun", "cancel a run (...)")."""
    needs = f"a {required.value!r} or 'admin' token" if required is not Role.ADMIN else "an 'admin' token"
    return Refused(
        grpc.StatusCode.PERMISSION_DENIED,
        f"a {role.value!r} token may not {what}: it needs {needs}",
        {"role": role.value, "required_role": required.value},
    )


def _checked(role: Role, rpc: str, request: Any, where: str = "") -> Refused | None:
    """The refusal of a call of `rpc` with `request` by a `role` token, if refused (the effect of
    the request; the effect of the step it writes is the statement's to check). `where` places
    the call ("operation 2 of the Batch")."""
    effect, how = effect_of(rpc, request)
    required = ROLE_FOR[effect]
    if _may(role, required):
        return None
    if how == f"call {rpc}":
        return _denied(role, f"{how} ({where})" if where else how, required)
    return _denied(role, f"{effect.value} ({how}, {where})" if where else f"{effect.value} ({how})", required)


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
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Request, Response] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Request, Response] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # no such method: gRPC answers UNIMPLEMENTED
        method = handler_call_details.method
        name, required = self._method(method)
        if required is None:
            return handler
        try:
            digest, role = self._role_of(handler_call_details.invocation_metadata)
            ours = method.startswith(f"/{SERVICE.full_name}/")
            if name == "Batch" and ours:
                return self._batch_checked(handler, role)
            if not _may(role, required):
                raise _denied(role, f"call {name}", required)
            if ours and (_request_may_refuse(name, role) or (name in STEP_WRITES and role not in _TAKES_WORKER_TASKS)):
                return self._request_checked(handler, name, role)
            if ours and name in WORKER_STREAMS:
                return _credentialed(handler, digest)
        except Refused as refused:
            return self._refusing(handler, name, refused)
        return handler

    def _method(self, method: str) -> tuple[str, Role | None]:
        known = self._methods.get(method)
        if known is None:
            known = self._methods[method] = (method.rpartition("/")[2], required_role(method))
        return known

    def _role_of(self, metadata: Any) -> tuple[bytes, Role]:
        """The presented token's SHA-256 and its role; Refused (UNAUTHENTICATED) without a known one."""
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
        digest = token_hash(value[len(_SCHEME) :].strip())
        role = self._roles.get(digest)
        if role is None:
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, "unknown token: this server has no such token (see its --auth-tokens file)")
        return digest, role

    def _count(self, name: str, refused: Refused) -> None:
        # No duration: a refusal says nothing of how long the RPC takes to serve.
        self._metrics.rpc_finished(name, refused.code, None)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request", extra={"rpc": name, "code": refused.code.name, "detail": refused.message})

    def _refusing(
        self, handler: grpc.RpcMethodHandler[Request, Response], name: str, refused: Refused
    ) -> grpc.RpcMethodHandler[Request, Response]:
        """A handler of the same shape as `handler` that answers `refused` without reading the request."""

        async def refuse(request_or_iterator: Any, context: AnyContext) -> None:
            self._count(name, refused)
            await context.abort(refused.code, refused.message, refused.status.trailing_metadata())

        return _HANDLER_OF_SHAPE[handler.request_streaming, handler.response_streaming](refuse)

    def _request_checked(
        self, handler: grpc.RpcMethodHandler[Request, Response], name: str, role: Role
    ) -> grpc.RpcMethodHandler[Request, Response]:
        """A unary handler behind the check of its request's effect, which runs marked (caller.py)
        when `role` may not take a worker's task."""
        serve = _aio_behavior(handler.unary_unary)
        takes_worker_tasks = role in _TAKES_WORKER_TASKS

        async def checked(request: Any, context: AnyContext) -> Any:
            refused = _checked(role, name, request)
            if refused is not None:
                self._count(name, refused)
                await context.abort(refused.code, refused.message, refused.status.trailing_metadata())
            return await _serve(serve, request, context, takes_worker_tasks=takes_worker_tasks)

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )

    def _batch_checked(
        self, handler: grpc.RpcMethodHandler[Request, Response], role: Role
    ) -> grpc.RpcMethodHandler[Request, Response]:
        """Batch's handler, behind a check that `role` may have the effect of every operation of the
        batch (effect_of, as each call alone); run marked (caller.py) when it may not take a
        worker's task. A batch holding an operation the role may not make is refused whole, before
        anything runs.
        """
        if role in _MAY_MAKE_ANY_BATCH and role in _TAKES_WORKER_TASKS:
            return handler  # nothing to check per operation
        serve = _aio_behavior(handler.unary_unary)
        takes_worker_tasks = role in _TAKES_WORKER_TASKS

        async def checked(
            request: pb.BatchRequest, context: grpc.aio.ServicerContext[pb.BatchRequest, pb.BatchResponse]
        ) -> pb.BatchResponse:
            for index, operation in enumerate(request.operations):
                kind = operation.WhichOneof("operation")
                if kind is None:
                    continue  # the servicer refuses the empty operation, naming it
                refused = _checked(role, RPC_OF[kind], getattr(operation, kind), f"operation {index} of the Batch")
                if refused is not None:
                    self._count("Batch", refused)
                    await context.abort(refused.code, refused.message, refused.status.trailing_metadata())
            response: pb.BatchResponse = await _serve(serve, request, context, takes_worker_tasks=takes_worker_tasks)
            return response

        return grpc.unary_unary_rpc_method_handler(
            checked, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


def _credentialed(handler: grpc.RpcMethodHandler[Request, Response], digest: bytes) -> grpc.RpcMethodHandler[Request, Response]:
    """A worker's stream, served knowing its token's fingerprint (caller.py): the first 16 hex
    digits of its SHA-256, enough to tell the tokens of one file apart, and less than the file holds."""
    serve = _aio_behavior(handler.stream_stream)
    fingerprint = digest.hex()[:16]

    async def credentialed(request_iterator: Any, context: AnyContext) -> Any:
        with caller.authenticated(fingerprint):
            return await serve(request_iterator, context)

    return grpc.stream_stream_rpc_method_handler(
        credentialed, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


def _aio_behavior(behavior: Callable[..., Any] | None) -> Handler:
    """A handler's behavior as this aio server runs it: a coroutine function of the request (or the
    request iterator) and the aio context. types-grpcio types RpcMethodHandler's behaviors as the
    sync server's (returning the response, taking grpc.ServicerContext); the handlers wrapped here
    are this service's, each one of the servicer's coroutine functions (servicer.py)."""
    assert behavior is not None
    return cast(Handler, behavior)


async def _serve(serve: Handler, request: Any, context: AnyContext, *, takes_worker_tasks: bool) -> Any:
    if takes_worker_tasks:
        return await serve(request, context)
    with caller.worker_tasks_refused():
        return await serve(request, context)


# The roles that may take a worker's task wherever it is: their step writes need no mark.
_TAKES_WORKER_TASKS = frozenset(role for role in Role if _may(role, ROLE_FOR[Effect.WORKER_TASK]))
# The roles that may have every effect a Batch operation can have (by its name or its request).
_BATCH_EFFECTS = {EFFECT_OF[rpc] for rpc in RPC_OF.values()} | {
    EFFECT_BY_REQUEST[rpc].effect for rpc in RPC_OF.values() if rpc in EFFECT_BY_REQUEST
}
_MAY_MAKE_ANY_BATCH = frozenset(role for role in Role if all(_may(role, ROLE_FOR[effect]) for effect in _BATCH_EFFECTS))

_HANDLER_OF_SHAPE: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


__all__ = [
    "EFFECT_BY_REQUEST",
    "EFFECT_OF",
    "OTHER_SERVICES",
    "REQUIRED",
    "ROLE_FOR",
    "SERVICE",
    "STEP_WRITES",
    "WORKER_STREAMS",
    "Effect",
    "RequestEffect",
    "TokenAuth",
    "effect_of",
    "required_role",
]
