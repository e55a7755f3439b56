"""A worker's reports about the tasks its stream holds, behind one API: ack, complete, fail.

Each report is decided in one place: an ack by the stream's own record of what it handed out (no
statement: an ack only says the worker has the task), a complete by the state store's complete_task
(the step succeeds, only for the attempt the stream holds), a fail by the task store's fail_tasks
(retried while retries remain; grouped with other streams' fails, db/coalescer.py). A report that
holds answers the step's status after it; a refused one raises the refusal, and nothing was written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from ..core import errors
from ..state.outcomes import Outcome
from ..state.store import FailureRecord, StateStore
from ..state.transitions import StepStatus
from .store import TaskStore


class WorkerReports:
    """What a worker may report of an attempt its stream holds, for every stream of one server."""

    def __init__(self, state: StateStore, tasks: TaskStore) -> None:
        self._state = state
        self._tasks = tasks

    @staticmethod
    def ack(in_flight: Mapping[uuid.UUID, int], step_id: uuid.UUID, attempt: int) -> None:
        """Check an ack against `in_flight` (step_id -> attempt handed out on the stream, not yet answered)."""
        if in_flight.get(step_id) != attempt:
            # The refusal a statement names not_held (the stream does not hold the attempt): the stream's own
            # record decides it here, so the metadata is what the ack named.
            raise errors.FailedPrecondition(
                f"attempt {attempt} of step {step_id} is not in flight on this stream",
                reason=Outcome.NOT_HELD.name,
                metadata={"step_id": step_id, "attempt": attempt},
            )

    async def complete(self, step_id: uuid.UUID, attempt: int, result_json: str, *, stream_id: uuid.UUID) -> StepStatus:
        """The attempt succeeded with this result; the step's status after."""
        row = await self._state.complete_task(step_id, attempt, stream_id, result_json)
        return StepStatus(row["status"])

    async def fail(self, step_id: uuid.UUID, attempt: int, failure: FailureRecord, *, retryable: bool, stream_id: uuid.UUID) -> StepStatus:
        """The attempt failed with this error; the step's status after (scheduled again while it has
        retries left and the failure is retryable, else failed)."""
        outcome = await self._tasks.fail_task(step_id, attempt, failure, retryable=retryable, stream_id=stream_id)
        if outcome.refusal is not None:
            raise outcome.refusal
        assert outcome.new_status is not None, "fail_tasks wrote the attempt without a new status"
        return outcome.new_status


__all__ = ["WorkerReports"]
