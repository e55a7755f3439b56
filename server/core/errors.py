"""The server's own errors. The store and the request validation raise these; the gRPC face maps
each class to one gRPC status code (rpc/status.py: STATUS_OF). Messages are written for the caller:
they say what was wrong and never carry a stack trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class WorkflowStateError(Exception):
    """Base of every error the server reports to a caller.

    Besides its message, each error names itself for programs: `reason` (UPPER_SNAKE) and `metadata`
    (the context the message gives, as strings), sent as a google.rpc.ErrorInfo in the status details
    (rpc/status.py). `REASON` is the reason of an error of the class that names no other: a refusal
    of a statement names its outcome instead (state/outcomes.py).
    """

    REASON: ClassVar[str]

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.reason = reason or self.REASON
        self.metadata = {key: str(value) for key, value in (metadata or {}).items() if value is not None}

    def copy(self) -> WorkflowStateError:
        """The same error (class, message, reason and metadata) as a new exception, for another caller
        (an exception object is raised in one place only)."""
        copied = WorkflowStateError.__new__(type(self))
        Exception.__init__(copied, str(self))
        copied.reason, copied.metadata = self.reason, dict(self.metadata)
        return copied


class InvalidArgument(WorkflowStateError):
    """The request is malformed: the same request will never succeed.

    Every raise names the `field` that is wrong (its path in the request, as the message does), or
    None when no one field is (a batch of too many operations, two fields that exclude each other):
    a required argument, so that no refusal of bad input forgets it. `limit` is the bound a value is past.
    """

    REASON = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, *, field: str | None, limit: object = None, reason: str | None = None, metadata: Mapping[str, object] | None = None
    ) -> None:
        # An empty field names nothing: no `field` key then, never an empty value.
        super().__init__(message, reason=reason, metadata={"field": field or None, "limit": limit, **(metadata or {})})


class NotFound(WorkflowStateError):
    """The run or step named by the request does not exist."""

    REASON = "NOT_FOUND"


class AlreadyExists(WorkflowStateError):
    """The request would create something that exists already."""

    REASON = "ALREADY_EXISTS"


class FailedPrecondition(WorkflowStateError):
    """The request is well formed but the current state refuses it (illegal transition, finished run)."""

    REASON = "FAILED_PRECONDITION"


class Aborted(WorkflowStateError):
    """The database gave up on the statement because of a concurrent one; retrying may succeed."""

    REASON = "ABORTED"


# What an Unavailable's message says when the statement may have been applied (driver_errors.py
# writes it); its metadata's `outcome` is read from it, so that copies of the error keep it too.
OUTCOME_IS_UNKNOWN = "its outcome is unknown"


class Unavailable(WorkflowStateError):
    """The database cannot be reached now; retrying later may succeed."""

    REASON = "UNAVAILABLE"

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, object] | None = None) -> None:
        # Whether anything was written, as a program reads it: the database layer says it in the message
        # (OUTCOME_IS_UNKNOWN when the connection broke while the statement ran; otherwise the
        # statement never ran, and the message says nothing was written or that the database is away).
        outcome = "unknown" if OUTCOME_IS_UNKNOWN in message else "nothing_written"
        super().__init__(message, reason=reason, metadata={"outcome": outcome, **(metadata or {})})


class DeadlineExceeded(WorkflowStateError):
    """The call's deadline passed before the database answered; nothing was written."""

    REASON = "DEADLINE_EXCEEDED"


class Overloaded(WorkflowStateError):
    """Every database connection of this server is busy: the server is overloaded, not the database away.

    Not an Unavailable: that would tell the health service (and load balancers) that PostgreSQL is gone,
    and gRPC clients retry UNAVAILABLE at once, adding load where there is too much already."""

    REASON = "OVERLOADED"


class PermissionDenied(WorkflowStateError):
    """The caller's token may not do this to this row (a step that is a worker's task), although
    its role lets it make the call: nothing was written."""

    REASON = "PERMISSION_DENIED"


class TooLarge(WorkflowStateError):
    """What the caller asked for would grow a stored value past the server's limit (a run's state
    variables past the payload limit): nothing was written."""

    REASON = "TOO_LARGE"


class ReplyTooLarge(WorkflowStateError):
    """The reply would pass the server's reply bound (--max-reply-bytes): nothing was written, and
    the message says what to ask for instead."""

    REASON = "REPLY_TOO_LARGE"


class LimitReached(WorkflowStateError):
    """A bound the server is configured with is reached for this caller (open streams, schedules):
    nothing was done; the message names the bound and the flag that sets it. The same call
    succeeds once the caller frees room (closes a stream, deletes a schedule)."""

    REASON = "LIMIT_REACHED"


class ShuttingDown(Unavailable):
    """The server is stopping; the caller should go to another server (not a database outage)."""

    REASON = "SHUTTING_DOWN"
