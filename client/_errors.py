"""The errors the client raises for a failed RPC, one class per gRPC code we expect.

Callers catch :class:`WorkflowStateError` for any refusal of the server, or one
subclass for the case they handle (``NotFound``, ``FailedPrecondition``...).
The gRPC code is always on ``.status``, so a code without a class of its own is
still inspectable; ``.reason`` names the refusal for programs (``STALE_FENCE``,
``FINISHED_RUN``...: the README's error table lists them) and ``.metadata`` gives
its context, both read from the status details the server sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc
import grpc.aio
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

# The ErrorInfo domain of the server's reasons, and where gRPC carries the details.
_DOMAIN = "workflowstate"
_DETAILS_KEY = "grpc-status-details-bin"


class WorkflowStateError(Exception):
    """An RPC to the workflowstate server failed.

    ``status`` is the gRPC code and ``message`` the server's explanation, for people.
    ``reason`` is the refusal's name, for programs (``None`` when the server sent none: a
    failure before the server answered), and ``metadata`` its
    context (``current_token``, ``prior_status``, ``field``..., all strings).
    """

    def __init__(
        self, message: str, status: grpc.StatusCode, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status.name}: {message}")
        self.message = message
        self.status = status
        self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(WorkflowStateError):
    """The request was malformed: bad UUID, empty name, invalid JSON..."""


class NotFound(WorkflowStateError):
    """No run or step has that id (or that name within the run)."""


class AlreadyExists(WorkflowStateError):
    """The run already has a step of that name, or a request_id was reused for another run."""


class FailedPrecondition(WorkflowStateError):
    """The transition is illegal from the current status, or the run is finished."""


class Unavailable(WorkflowStateError):
    """The server, or its database, could not be reached (after any retries)."""


class DeadlineExceeded(WorkflowStateError):
    """The call did not finish within its timeout."""


class ResourceExhausted(WorkflowStateError):
    """RESOURCE_EXHAUSTED: the server is overloaded (every database connection busy; retry after a
    pause), a message was over the size limit, the reply would pass the server's reply bound
    (--max-reply-bytes; the message says what to ask for instead), or a bound of the server is
    reached (this caller's open streams, the number of schedules: the message names the bound and
    its flag; close a stream or delete a schedule first). Whichever it is, nothing was written."""


class Aborted(WorkflowStateError):
    """PostgreSQL broke a deadlock or serialization conflict: nothing was written; retry."""


class Unauthenticated(WorkflowStateError):
    """The server wants a token (``token=`` or ``WORKFLOWSTATE_TOKEN``) and got none, a malformed
    one, or one it does not know. Nothing was done."""


class PermissionDenied(WorkflowStateError):
    """The token is known, but its role may not make this call (a ``read`` token writing, say).
    Nothing was done."""


_ERROR_BY_STATUS: dict[grpc.StatusCode, type[WorkflowStateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


class BatchedCallError(grpc.RpcError):
    """The failure of one operation of a Batch call, shaped like the failed separate call.

    It has the two methods of a failed ``grpc.Call`` (``code()`` and ``details()``), so the
    client maps it exactly as it maps the separate call's error, and the reason and metadata the
    separate call's status details would have carried; it is the ``__cause__`` of the
    WorkflowStateError raised for the operation.
    """

    def __init__(
        self, status: grpc.StatusCode, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status.name}: {message}")
        self._status = status
        self._message = message
        self.reason = reason
        self.metadata = dict(metadata or {})

    def code(self) -> grpc.StatusCode:
        return self._status

    def details(self) -> str:
        return self._message


def error_from_rpc(err: grpc.RpcError) -> WorkflowStateError:
    """Turn a failed call of either stub (sync or ``grpc.aio``) into our error class.

    The caller raises the result ``from err`` so the original gRPC error stays
    on ``__cause__`` for debugging.
    """
    # A sync call raises an RpcError that is also a grpc.Call; grpc.aio raises
    # AioRpcError, which is not a Call but has the same two methods. A bare
    # RpcError has neither, which only happens outside a real call. An operation of a batch
    # fails with a BatchedCallError.
    reason: str | None = None
    metadata: dict[str, str] = {}
    if isinstance(err, (grpc.Call, grpc.aio.AioRpcError)):
        reason, metadata = _error_info(err.trailing_metadata())
    elif isinstance(err, BatchedCallError):
        reason, metadata = err.reason, err.metadata
    if isinstance(err, (grpc.Call, grpc.aio.AioRpcError, BatchedCallError)):
        status = err.code()
        message = err.details() or ""
    else:
        status, message = grpc.StatusCode.UNKNOWN, str(err)
    return _ERROR_BY_STATUS.get(status, WorkflowStateError)(message, status, reason=reason, metadata=metadata)


def _error_info(trailing: Iterable[tuple[str, str | bytes]] | None) -> tuple[str | None, dict[str, str]]:
    """The reason and metadata of the server's ErrorInfo in a call's status details, if it sent one."""
    for key, value in trailing or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            try:
                details = status_pb2.Status.FromString(value)
            except DecodeError:  # a proxy's malformed details must not hide the status itself
                return None, {}
            for detail in details.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and info.domain == _DOMAIN:
                    return info.reason, dict(info.metadata)
    return None, {}
