"""Typed Python client for the workflowstate server.

``WorkflowStateClient`` blocks, ``AsyncWorkflowStateClient`` awaits; both have
the same methods, named after pikku's ``PgWorkflowService`` (``create_run``,
``insert_step_state``, ``set_step_result``...), take and return plain Python
values (JSON payloads decoded, UTC datetimes, timedeltas), and raise
``WorkflowStateError`` subclasses carrying the gRPC code in ``.status``.

The modules behind this one are private; import from here.
"""

from ._async import AsyncWorkflowStateClient
from ._errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    WorkflowStateError,
)
from ._sync import WorkflowStateClient
from ._types import Failure, Run, RunStatus, StepAttempt, StepState, StepStatus

__all__ = [
    "AlreadyExists",
    "AsyncWorkflowStateClient",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Failure",
    "InvalidArgument",
    "NotFound",
    "Run",
    "RunStatus",
    "StepAttempt",
    "StepState",
    "StepStatus",
    "Unavailable",
    "WorkflowStateClient",
    "WorkflowStateError",
]
