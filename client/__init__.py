"""Typed Python client for the workflowstate server.

``WorkflowStateClient`` blocks, ``AsyncWorkflowStateClient`` awaits; both have
the same methods, named after pikku's ``PgWorkflowService`` (``create_run``,
``insert_step_state``, ``set_step_result``...), take and return plain Python
values (JSON payloads decoded, UTC datetimes, timedeltas), and raise
``WorkflowStateError`` subclasses carrying the gRPC code in ``.status``.

Leases lock a key (a run, a step, anything) across workers:
``with client.run_lock(run_id) as lease:`` holds ``"run:<run_id>"`` and keeps
it alive until the block ends (``async with`` on the async client), and
``lease.client`` makes every write carry the lease's fencing token, so a
holder that lost the lease without noticing cannot overwrite its successor.

The modules behind this one are private; import from here.
"""

from ._async import AsyncWorkflowStateClient
from ._lease_async import AsyncLease
from ._lease_sync import Lease
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
from ._types import (
    Failure,
    LeaseInfo,
    LeaseLostReason,
    Run,
    RunStatus,
    StepAttempt,
    StepState,
    StepStatus,
)

__all__ = [
    "AlreadyExists",
    "AsyncLease",
    "AsyncWorkflowStateClient",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Failure",
    "InvalidArgument",
    "Lease",
    "LeaseInfo",
    "LeaseLostReason",
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
