"""Every RPC of the client, described once for the sync and the async client.

Each function here builds the request of one RPC from the caller's Python
arguments and says how to read its reply, as a :class:`Call`. The two clients
only send it, the sync one blocking, the async one awaiting; everything else
(validation, encoding, decoding, error mapping) lives here, so it cannot drift
between them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Generic, TypeVar

import grpc
from google.protobuf.message import Message

from workflowstate.v1 import workflow_state_pb2 as pb

from ._convert import (
    duration_to_proto,
    encode_json,
    failure_to_proto,
    run_from_proto,
    run_status_to_proto,
    step_attempt_from_proto,
    step_state_from_proto,
    step_status_to_proto,
)
from ._errors import NotFound, error_from_rpc
from ._types import Failure, Run, RunStatus, StepAttempt, StepState, StepStatus

R = TypeVar("R")


class _Unset(enum.Enum):
    # A one-member enum rather than object(): type checkers can narrow on it.
    UNSET = enum.auto()

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Final = _Unset.UNSET
"""Default of arguments where ``None`` is a meaningful value (JSON null)."""


@dataclass(frozen=True)
class Call(Generic[R]):
    """One RPC ready to send: which method, with which request, and how to read the outcome."""

    method: str
    """The RPC's name, as on the generated stub (``"CreateRun"``)."""

    request: Message
    """The request message, already built and encoded."""

    read_reply: Callable[[Any], R]
    """Turns the reply message into what the client method returns."""

    if_not_found: Callable[[], R] | None = None
    """What to return instead of raising NotFound; ``None`` to raise."""

    def fail(self, err: grpc.RpcError) -> R:
        """Handle a failed call: raise it as a WorkflowStateError (or return ``if_not_found()``).

        The error is raised ``from err``, so the gRPC error stays on
        ``__cause__`` for debugging.
        """
        error = error_from_rpc(err)
        if self.if_not_found is not None and isinstance(error, NotFound):
            return self.if_not_found()
        raise error from err


def timeout_seconds(timeout: timedelta | None, default: timedelta | None) -> float | None:
    """The deadline of one call in seconds: its own ``timeout``, else the client's default.

    ``None`` as the client's default means no deadline at all.
    """
    chosen = timeout if timeout is not None else default
    return chosen.total_seconds() if chosen is not None else None


# --- runs --------------------------------------------------------------------


def create_run(workflow: str, input: Any, request_id: str | None) -> Call[Run]:
    """CreateRun. Without a request_id one is generated, which makes the call safe to retry."""
    return Call(
        "CreateRun",
        pb.CreateRunRequest(
            workflow=workflow,
            input_json=encode_json(input),
            # gRPC may resend CreateRun after a lost reply; the same key makes
            # the server return the run the first attempt created.
            request_id=request_id or uuid.uuid4().hex,
        ),
        lambda reply: run_from_proto(reply.run),
    )


def get_run(run_id: str) -> Call[Run | None]:
    """GetRun; a missing run reads as ``None``, like pikku's ``getRun``."""
    return Call(
        "GetRun",
        pb.GetRunRequest(run_id=run_id),
        lambda reply: run_from_proto(reply.run),
        if_not_found=lambda: None,
    )


def get_run_history(run_id: str) -> Call[list[StepAttempt]]:
    """GetRunHistory: every attempt of every step, oldest first."""
    return Call(
        "GetRunHistory",
        pb.GetRunHistoryRequest(run_id=run_id),
        lambda reply: [step_attempt_from_proto(attempt) for attempt in reply.attempts],
    )


def update_run_status(
    run_id: str,
    status: RunStatus,
    output: Any | _Unset,
    error: Failure | BaseException | None,
) -> Call[Run]:
    """UpdateRunStatus; ``output`` UNSET and ``error`` None leave the stored values unchanged."""
    request = pb.UpdateRunStatusRequest(run_id=run_id, status=run_status_to_proto(status))
    if output is not UNSET:
        request.output_json = encode_json(output)
    if error is not None:
        request.error.CopyFrom(failure_to_proto(error))
    return Call("UpdateRunStatus", request, lambda reply: run_from_proto(reply.run))


# --- steps -------------------------------------------------------------------


def _read_step(reply: Any) -> StepState:
    return step_state_from_proto(reply.step)


def insert_step_state(
    run_id: str,
    step_name: str,
    rpc_name: str,
    data: Any,
    retries: int | None,
    retry_delay: timedelta | None,
) -> Call[StepState]:
    """InsertStepState; options are sent only when retries or retry_delay is given."""
    request = pb.InsertStepStateRequest(
        run_id=run_id, step_name=step_name, rpc_name=rpc_name, data_json=encode_json(data)
    )
    # Touching a sub-field marks `options` (and the optional field) as set, so
    # an option the caller did not give stays unset on the wire.
    if retries is not None:
        request.options.retries = retries
    if retry_delay is not None:
        request.options.retry_delay.CopyFrom(duration_to_proto(retry_delay))
    return Call("InsertStepState", request, _read_step)


def get_step_state(run_id: str, step_name: str) -> Call[StepState]:
    """GetStepState; a missing step raises NotFound, like pikku's ``getStepState`` throws."""
    return Call(
        "GetStepState", pb.GetStepStateRequest(run_id=run_id, step_name=step_name), _read_step
    )


def set_step_scheduled(step_id: str) -> Call[StepState]:
    """SetStepScheduled."""
    return Call("SetStepScheduled", pb.SetStepScheduledRequest(step_id=step_id), _read_step)


def set_step_running(step_id: str) -> Call[StepState]:
    """SetStepRunning."""
    return Call("SetStepRunning", pb.SetStepRunningRequest(step_id=step_id), _read_step)


def set_step_result(step_id: str, result: Any) -> Call[StepState]:
    """SetStepResult."""
    return Call(
        "SetStepResult",
        pb.SetStepResultRequest(step_id=step_id, result_json=encode_json(result)),
        _read_step,
    )


def set_step_error(step_id: str, error: Failure | BaseException) -> Call[StepState]:
    """SetStepError; an exception is described with ``Failure.from_exception``."""
    return Call(
        "SetStepError",
        pb.SetStepErrorRequest(step_id=step_id, error=failure_to_proto(error)),
        _read_step,
    )


def create_retry_attempt(step_id: str, status: StepStatus) -> Call[StepState]:
    """CreateRetryAttempt."""
    return Call(
        "CreateRetryAttempt",
        pb.CreateRetryAttemptRequest(step_id=step_id, status=step_status_to_proto(status)),
        _read_step,
    )
