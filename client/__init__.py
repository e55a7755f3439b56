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

Remote mode: ``Worker(client, {"chargeCard": charge}).run()`` (``AsyncWorker``
with the async client) runs the steps scheduled for its handlers, handed out
by the server over one stream; ``client.watch_run(run_id)`` follows a run's
events until it finishes, and ``client.stream_run_events()`` every run's, both
resuming by themselves when the server goes away.

The modules behind this one are private; import from here.
"""

from ._async import AsyncWorkflowStateClient
from ._channel import InsecureTokenWarning
from ._batch_protocol import Batching
from ._lease_async import AsyncLease
from ._lease_sync import Lease
from ._errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    WorkflowStateError,
)
from ._sync import WorkflowStateClient
from ._worker_async import AsyncWorker
from ._worker_protocol import NonRetryableError, TaskCancelled
from ._worker_sync import Worker
from ._types import ClaimedStep, Failure, LeaseInfo, LeaseLostReason, LeasePage, PlannedStep, RetentionPolicy, Run, RunEvent, RunPage
from ._types import RunStatus, StepAttempt, StepChange, StepRef, StepState, StepStatus, StepTask, TaskCancellation, UpsertedVersion
from ._types import WorkerInfo, WorkflowSummary, WorkflowVersion, WorkflowVersionStatus
from ._types import Schedule, ScheduleCatchUp, ScheduleOverlap, SchedulePage
from ._types import DispatchDefaults, StepOptions, UndecodableJson

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AsyncLease",
    "AsyncWorker",
    "AsyncWorkflowStateClient",
    "Batching",
    "ClaimedStep",
    "DeadlineExceeded",
    "DispatchDefaults",
    "FailedPrecondition",
    "Failure",
    "InsecureTokenWarning",
    "InvalidArgument",
    "Lease",
    "LeaseInfo",
    "LeaseLostReason",
    "LeasePage",
    "NonRetryableError",
    "NotFound",
    "PlannedStep",
    "PermissionDenied",
    "ResourceExhausted",
    "RetentionPolicy",
    "Run",
    "RunEvent",
    "RunPage",
    "RunStatus",
    "Schedule",
    "ScheduleCatchUp",
    "ScheduleOverlap",
    "SchedulePage",
    "StepAttempt",
    "StepChange",
    "StepRef",
    "StepOptions",
    "StepState",
    "StepStatus",
    "StepTask",
    "TaskCancellation",
    "TaskCancelled",
    "Unauthenticated",
    "Unavailable",
    "UndecodableJson",
    "UpsertedVersion",
    "Worker",
    "WorkerInfo",
    "WorkflowStateClient",
    "WorkflowStateError",
    "WorkflowSummary",
    "WorkflowVersion",
    "WorkflowVersionStatus",
]
