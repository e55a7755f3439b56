"""The server's own errors. The store and the request validation raise these; the servicer maps
each class to one gRPC status code (STATUS_OF, at the end). Messages are written for the caller:
they say what was wrong and never carry a stack trace."""

from __future__ import annotations

import grpc


class WorkflowStateError(Exception):
    """Base of every error the server reports to a caller."""


class InvalidArgument(WorkflowStateError):
    """The request is malformed: the same request will never succeed."""


class NotFound(WorkflowStateError):
    """The run or step named by the request does not exist."""


class AlreadyExists(WorkflowStateError):
    """The request would create something that exists already."""


class FailedPrecondition(WorkflowStateError):
    """The request is well formed but the current state refuses it (illegal transition, finished run)."""


class Aborted(WorkflowStateError):
    """The database gave up on the statement because of a concurrent one; retrying may succeed."""


class Unavailable(WorkflowStateError):
    """The database cannot be reached now; retrying later may succeed."""


class DeadlineExceeded(WorkflowStateError):
    """The call's deadline passed before the database answered; nothing was written."""


class Overloaded(WorkflowStateError):
    """Every database connection of this server is busy: the server is overloaded, not the database away.

    Not an Unavailable: that would tell the health service (and load balancers) that PostgreSQL is gone,
    and gRPC clients retry UNAVAILABLE at once, adding load where there is too much already."""


class PermissionDenied(WorkflowStateError):
    """The caller's token may not do this to this row (a step that is a worker's task), although
    its role lets it make the call: nothing was written."""


class TooLarge(WorkflowStateError):
    """What the caller asked for would grow a stored value past the server's limit (a run's state
    variables past the payload limit): nothing was written."""


class ReplyTooLarge(WorkflowStateError):
    """The reply would pass the server's reply bound (--max-reply-bytes): nothing was written, and
    the message says what to ask for instead."""


class LimitReached(WorkflowStateError):
    """A bound the server is configured with is reached for this caller (open streams, schedules):
    nothing was done; the message names the bound and the flag that sets it. The same call
    succeeds once the caller frees room (closes a stream, deletes a schedule)."""


class ShuttingDown(Unavailable):
    """The server is stopping; the caller should go to another server (not a database outage)."""


# The one map from the server's errors to gRPC status codes.
STATUS_OF: dict[type[WorkflowStateError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Aborted: grpc.StatusCode.ABORTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ReplyTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    LimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
