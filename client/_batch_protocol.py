"""Transparent batching: what the sync and the async sender share.

The client's methods do not change when batching is on. Each call becomes a :class:`Pending`
operation; the sender (``_batch_async``, ``_batch_sync``) collects the operations pending at the
same moment and hands them to :func:`plan`, which cuts them into :class:`Group`\\ s: a group of
one goes out as the ordinary unary call, a larger one as one ``Batch`` RPC. Each operation then
gets an :class:`Outcome`: the reply of its call or the error the separate call would have had, so
``Call.read_reply`` / ``Call.fail`` handle it exactly as before and the caller sees the same
values and exception classes.

Retries. A unary call's retries on UNAVAILABLE are declared in the channel's service config and
done by gRPC (``_channel``). A Batch is not retried by gRPC, as it mixes operations that are safe
to repeat with ones that are not; instead each operation of a batch that ends UNAVAILABLE (its
own result, or the whole Batch call's) is retried here by :func:`retry_delay`, under the same
policy and only for the same RPCs as gRPC would retry. A retried operation goes as a batch of its
own, so gRPC does not add its own attempts on top. An operation of a batch answered
RESOURCE_EXHAUSTED (the batch's reply reached the server's reply bound before it, or the server is
overloaded; nothing was written either way) goes again once, as a batch of its own, whatever the
RPC: it then ends as its separate call would.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

import grpc

from workflowstate import v1 as pb

from ._calls import Call
from ._channel import RETRYABLE_METHODS, RetryPolicy
from ._errors import BatchedCallError

R = TypeVar("R")

# The unary RPC's name -> its field in BatchOperation and BatchResult: "CreateRun" -> "create_run".
FIELD_OF_METHOD: dict[str, str] = {
    field.message_type.name.removesuffix("Request"): field.name
    for field in pb.BatchOperation.DESCRIPTOR.oneofs_by_name["operation"].fields
    if field.message_type is not None  # every operation is a request message; this tells the type checker
}

_STATUS_OF_CODE = {status.value[0]: status for status in grpc.StatusCode}


@dataclass(frozen=True)
class Batching:
    """How the client batches calls; pass ``batching=Batching(...)`` to the client to change it."""

    window: timedelta = timedelta(0)
    """How long a call waits for others to join its batch. Zero (the default) sends what is pending
    at the end of the current event-loop turn (async) or while another call is being sent (sync):
    a lone call goes out at once."""

    max_operations: int = 64
    """The most operations in one Batch call; keep it at or under the server's
    ``--batch-max-operations`` (1000 by default). Beyond about 16 a batch saves little more."""

    max_bytes: int = 1024 * 1024
    """The most request bytes in one Batch call; a call bigger than this on its own goes alone.
    It keeps each Batch well under the server's message limit."""

    def __post_init__(self) -> None:
        if self.window < timedelta(0):
            raise ValueError(f"window must not be negative, got {self.window}")
        if self.max_operations < 1:
            raise ValueError(f"max_operations must be at least 1, got {self.max_operations}")
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {self.max_bytes}")


def batching_of(batching: bool | Batching) -> Batching | None:
    """The client's ``batching`` argument as settings, or ``None`` for no batching."""
    if isinstance(batching, Batching):
        return batching
    return Batching() if batching else None


@dataclass(frozen=True)
class Outcome:
    """How one operation ended: the reply message of its call, or its error."""

    reply: Any = None
    error: grpc.RpcError | None = None
    retried_by_grpc: bool = False
    """True when gRPC already applied the retry policy (a unary call): not retried again."""


@dataclass(eq=False)
class Pending(Generic[R]):
    """One call waiting to be sent."""

    call: Call[R]
    timeout: float | None
    """The call's timeout in seconds, ``None`` for none."""
    deadline: float | None
    """When the timeout ends, on ``time.monotonic()``."""
    attempt: int = 1

    @functools.cached_property
    def size(self) -> int:
        """The request's encoded size in bytes."""
        return self.call.request.ByteSize()

    @property
    def field(self) -> str:
        return FIELD_OF_METHOD[self.call.method]

    def remaining(self, now: float) -> float | None:
        """Seconds left to the deadline (possibly zero or less), ``None`` without one."""
        return None if self.deadline is None else self.deadline - now


def pending(call: Call[R], timeout: float | None) -> Pending[R]:
    """The call, made now with ``timeout`` seconds."""
    return Pending(call, timeout, None if timeout is None else time.monotonic() + timeout)


@dataclass(frozen=True)
class Group:
    """Operations sent together: as the unary call for ``as_batch`` False (exactly one), else one Batch."""

    items: list[Pending[Any]]
    as_batch: bool

    def timeout(self, now: float) -> float | None:
        """The call's deadline in seconds: the earliest of its operations' (a batch's applies to each)."""
        left = [remaining for item in self.items if (remaining := item.remaining(now)) is not None]
        return max(min(left), 0.0) if left else None


def plan(items: Iterable[Pending[Any]], limits: Batching) -> list[Group]:
    """Cut the pending operations into groups of at most ``limits.max_operations`` and
    ``limits.max_bytes``; only calls made with the same ``timeout`` are put together. A group's
    deadline is the earliest of its calls': calls of one turn made with the same timeout lose
    at most the time the turn took."""
    groups: list[Group] = []
    shared: list[Pending[Any]] = []
    for item in items:
        if item.attempt > 1 or item.size > limits.max_bytes:
            # A retry goes as a batch of its own, so gRPC does not retry it again; a call too big to
            # share a batch goes alone, as the unary call.
            groups.append(Group([item], as_batch=item.attempt > 1 and item.size <= limits.max_bytes))
        else:
            shared.append(item)
    # Without a timeout first, then by timeout (a stable sort: in call order otherwise).
    shared.sort(key=lambda item: (item.timeout is not None, item.timeout or 0.0))
    current: list[Pending[Any]] = []
    current_bytes = 0
    for item in shared:
        if current and not (
            len(current) < limits.max_operations
            and current_bytes + item.size <= limits.max_bytes
            and current[0].timeout == item.timeout
        ):
            groups.append(Group(current, as_batch=len(current) > 1))
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item.size
    if current:
        groups.append(Group(current, as_batch=len(current) > 1))
    return groups


def spread(limits: Batching, count: int, connections: int) -> Batching:
    """The limits for ``count`` operations over ``connections``: one batch per connection at most
    as long, so a turn's calls keep every connection (and the server process behind it) busy."""
    if connections == 1 or count <= connections:
        return limits
    return dataclasses.replace(limits, max_operations=min(limits.max_operations, -(-count // connections)))


def batch_request(group: Group) -> pb.BatchRequest:
    request = pb.BatchRequest()
    for item in group.items:
        getattr(request.operations.add(), item.field).CopyFrom(item.call.request)
    return request


def outcomes_of_reply(group: Group, response: pb.BatchResponse) -> list[Outcome]:
    """Each operation's outcome, from the Batch reply's results (in the operations' order)."""
    if len(response.results) != len(group.items):
        error = BatchedCallError(
            grpc.StatusCode.INTERNAL,
            f"the server answered {len(response.results)} results to a batch of {len(group.items)}",
        )
        return [Outcome(error=error) for _ in group.items]
    outcomes = []
    for item, result in zip(group.items, response.results, strict=True):
        kind = result.WhichOneof("result")
        if kind == "error":
            failed = result.error
            status = _STATUS_OF_CODE.get(failed.code, grpc.StatusCode.UNKNOWN)
            # An older server sends no reason: None, as for a separate call without status details.
            batched = BatchedCallError(status, failed.message, reason=failed.reason or None, metadata=failed.metadata)
            outcomes.append(Outcome(error=batched))
        elif kind == item.field:
            outcomes.append(Outcome(reply=getattr(result, kind)))
        else:
            error = BatchedCallError(grpc.StatusCode.INTERNAL, f"the server answered {kind} to {item.field}")
            outcomes.append(Outcome(error=error))
    return outcomes


def outcomes_of_failed_batch(group: Group, err: grpc.RpcError) -> list[Outcome]:
    """Each operation's outcome when the Batch call itself failed: its error, for each."""
    return [Outcome(error=err) for _ in group.items]


def retry_delay(item: Pending[Any], outcome: Outcome, policy: RetryPolicy | None) -> float | None:
    """How long to wait before sending ``item`` again, or ``None`` to give its outcome to the caller.

    The rule of gRPC's retry policy (gRFC A6), applied to one operation of a batch: only the RPCs
    that are safe to repeat, only on the policy's codes, at most ``max_attempts`` in all, a random
    wait under an upper bound that grows with each retry, and never past the deadline.
    """
    error = outcome.error
    if error is None or outcome.retried_by_grpc:
        return None
    if item.attempt == 1 and _code(error) == grpc.StatusCode.RESOURCE_EXHAUSTED:
        # Refused in a Batch whose reply reached the server's reply bound (or by an overloaded
        # server): nothing was written, so it goes again once, as a batch of its own, and ends as
        # its separate call would.
        return 0.0
    if policy is None:
        return None
    if item.call.method not in RETRYABLE_METHODS or item.attempt >= policy.max_attempts:
        return None
    code = _code(error)
    if code is None or code.name not in policy.retryable_status_codes:
        return None
    bound = min(
        policy.initial_backoff_seconds * policy.backoff_multiplier ** (item.attempt - 1),
        policy.max_backoff_seconds,
    )
    delay = random.uniform(0, bound)
    if item.deadline is not None and time.monotonic() + delay >= item.deadline:
        return None
    return delay


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if hasattr(error, "code") else None
