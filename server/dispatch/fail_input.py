"""The input of fail_tasks (dispatch.sql), the set-based statement that fails attempts handed to workers.

As the inputs of state.sql's set-based statements (state/set_inputs.py): which row it writes (`key`:
one operation per step in a group), its payload's bytes (`size`); its fields are the statement's
array parameters, in the inputs' order (the ordinal of each result row: db/params.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..db.params import JOINED, named
from ..state.set_inputs import BASE_BYTES, OPEN_RUN_STATUSES
from ..state.transitions import Via, only_target

_FAILED = only_target(Via.TASK_FAIL)
_RETRY = only_target(Via.AUTO_RETRY)


@dataclass(frozen=True)
class FailTaskInput:
    """fail_tasks: one attempt failed with its error, retried while retryable and retries remain."""

    step_id: uuid.UUID
    attempt: int
    error_json: str = field(metadata=named("error"))
    retryable: bool
    # The stream that must hold the attempt (a worker's own fail, its stream's end); None: the sweeper's, any holder's.
    stream_id: uuid.UUID | None
    from_statuses: Sequence[str] = field(metadata=JOINED)

    CONSTANTS: ClassVar[Mapping[str, Any]] = {
        "failed_status": _FAILED.value,
        "retry_status": _RETRY.value,
        "open_run_statuses": OPEN_RUN_STATUSES,
    }

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.error_json)
