"""The status a call ends with when its handler raised: one mapping for unary calls, streams and
each operation of a Batch."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

from ..core import errors
from .rpc_facts import FACTS

log = logging.getLogger("workflowstate.server.rpc")

# The one map from the server's errors to gRPC status codes (each error names its own reason).
STATUS_OF: dict[type[errors.WorkflowStateError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.ReplyTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.LimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

# The ErrorInfo's domain: the reasons are this service's own names.
DOMAIN = "workflowstate"
# The trailing metadata key of the rich status (google.rpc.Status), as every gRPC implementation names it.
DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class CallStatus:
    """How a failed call ends: the gRPC code and message, and the reason and metadata a program reads."""

    code: grpc.StatusCode
    message: str
    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The status details as gRPC carries them: a google.rpc.Status holding one ErrorInfo, under
        grpc-status-details-bin (what grpcio-status's rpc_status.from_call and other languages' clients read)."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=dict(self.metadata))
        details = status_pb2.Status(code=self.code.value[0], message=self.message)
        details.details.add().Pack(info)
        return ((DETAILS_KEY, details.SerializeToString()),)


def status_of(err: Exception, rpc: str, on_database_unavailable: Callable[[Exception], None]) -> CallStatus:
    """The status for an error raised while serving `rpc`.

    The server's own errors map through STATUS_OF (Unavailable also tells the health monitor)
    and name their reason; anything else is a bug: logged with its stack and a reference, answered
    INTERNAL with the reference only, never the stack.
    """
    if isinstance(err, errors.WorkflowStateError):
        if type(err) is errors.Unavailable:
            on_database_unavailable(err)
            err = _as_read(err, rpc)
        return CallStatus(STATUS_OF[type(err)], str(err), err.reason, err.metadata)
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error", exc_info=err, extra={"rpc": rpc, "reference": reference})
    message = f"internal server error (reference {reference}); see the server log"
    return CallStatus(grpc.StatusCode.INTERNAL, message, "INTERNAL", {"reference": reference})


def _as_read(err: errors.Unavailable, rpc: str) -> errors.Unavailable:
    """An unknown outcome is a write's doubt: an RPC the proto declares NO_SIDE_EFFECTS changed nothing
    whatever became of its statement, so it says nothing was written (its outcome metadata follows
    the message, as for every Unavailable). `rpc` is "Batch.GetRun" for an operation of a Batch."""
    facts = FACTS.get(rpc.removeprefix("Batch."))
    if facts is None or not facts.reads_only or errors.OUTCOME_IS_UNKNOWN not in str(err):
        return err
    cause = str(err).split(f"; {errors.OUTCOME_IS_UNKNOWN}")[0]
    others = {key: value for key, value in err.metadata.items() if key != "outcome"}
    return errors.Unavailable(f"{cause}; {facts.name} only reads: nothing was written", reason=err.reason, metadata=others)
