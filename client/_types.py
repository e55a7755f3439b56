"""The Python values the client hands out: runs, steps, attempts, failures, leases, events, tasks.

They mirror the messages of ``workflowstate.v1`` with Python types: JSON payloads
are already decoded, times are timezone-aware UTC ``datetime``, spans are
``timedelta``, and a field the server left unset is ``None``. All are frozen:
they are snapshots of what the server stored, and changing one changes nothing
on the server.
"""

from __future__ import annotations

import enum
import threading
import traceback
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class RunStatus(enum.Enum):
    """Where a run is in its life. COMPLETED, FAILED and CANCELLED are final.

    SUSPENDED is a run paused until something outside it lets it go on: it
    may become RUNNING again, or finish; it still takes step writes.
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"


class StepStatus(enum.Enum):
    """Where the current attempt of a step is.

    SUSPENDED is an attempt paused (``set_step_suspended``) until something
    outside the workflow resumes it with ``set_step_scheduled``,
    ``set_step_running``, ``set_step_result`` or ``set_step_error``.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUSPENDED = "suspended"


class WorkflowVersionStatus(enum.Enum):
    """Where a version of a workflow's graph is in its life: DRAFT may become
    ACTIVE or DECLINED, ACTIVE may become DECLINED, DECLINED may become ACTIVE."""

    DRAFT = "draft"
    ACTIVE = "active"
    DECLINED = "declined"


class LeaseLostReason(enum.StrEnum):
    """Why a held lease was lost: the server's three reasons, and the client's own two."""

    EXPIRED = "expired"
    """The server let it expire: no keepalive arrived within its ttl."""

    TAKEN_OVER = "taken_over"
    """It expired and another holder acquired the key."""

    SERVER_SHUTDOWN = "server_shutdown"
    """The server is shutting down and released it; acquire again through another server."""

    STREAM_BROKEN = "stream_broken"
    """The stream to the server failed or ended while the lease was held."""

    DEADLINE_PASSED = "deadline_passed"
    """The client heard of no new expiry before the last one it was told passed."""

    UNKNOWN = "unknown"
    """The server gave a reason this client does not know; is it older than the server?"""


@dataclass(frozen=True)
class UndecodableJson:
    """Stands in for a stored JSON value this client cannot turn into Python values.

    The server returns what PostgreSQL holds, and some JSON is beyond Python's ``json``: an integer
    of more than 4300 digits (``sys.get_int_max_str_digits()``; ``1e5000`` is stored as 1 and 5000
    zeros), or nesting deeper than the recursion limit. Current servers refuse such numbers, but a
    database may hold them from before. Rather than fail the whole call, the client puts this in the
    value's place: check for it with ``isinstance`` where such values may exist, and read ``text``
    with a decoder of your choice (``json.loads(text, parse_int=decimal.Decimal)``).
    """

    field: str
    """Which value it is: ``Run.input``, ``StepState.result``, ``StepTask.data``, ``run state 'name'``..."""

    reason: str
    """Why Python could not decode it: the decoder's own message."""

    # dataclasses.field by its module: inside this class `field` is the attribute above.
    text: str = dataclasses.field(repr=False)
    """The value's JSON text as the server sent it."""

    def __str__(self) -> str:
        return f"{self.field} cannot be decoded: {self.reason} ({len(self.text)} characters of JSON)"


@dataclass(frozen=True)
class Failure:
    """Why a step or a run failed."""

    message: str
    """The human-readable error message; the server requires it non-empty."""

    stack: str = ""
    """The stack trace of the worker that failed; empty when unknown."""

    code: str = ""
    """A machine-readable error code chosen by the worker; empty when none."""

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        """Describe ``exc``: its message, its formatted traceback and its class name.

        An exception raised without a message (``raise KeyError()``) gets its
        class name as message, because the server refuses an empty one.
        """
        name = type(exc).__name__
        return cls(
            message=str(exc) or name,
            stack="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            code=name,
        )


@dataclass(frozen=True)
class Run:
    """One execution of a workflow, as the server stored it."""

    run_id: str
    """The run's UUID, assigned by the server."""

    workflow: str
    """The name of the workflow this run executes."""

    status: RunStatus
    """Where the run is in its life."""

    input: Any
    """The run's input, decoded from JSON."""

    output: Any
    """The run's output, decoded from JSON; ``None`` until one is stored."""

    error: Failure | None
    """Why the run failed; ``None`` when no error was stored."""

    create_time: datetime
    """When the run was created (UTC)."""

    update_time: datetime
    """When the run last changed (UTC)."""

    schedule_id: str | None = None
    """The schedule that created the run; ``None`` for a run made by ``create_run``."""

    schedule_time: datetime | None = None
    """The schedule's occurrence the run is for (when it was due, UTC); ``None`` without a schedule."""

    inline: bool = False
    """Whether the run executes in the process that started it, as created."""

    graph_hash: str | None = None
    """The version of the workflow's graph the run follows; ``None`` if none."""

    metadata: Any = None
    """The engine's JSON kept with the run, decoded; ``None`` if none (or not
    asked for: a ``list_runs`` without ``full``)."""

    deterministic: bool = False
    """Whether the workflow's steps are known in advance, as created."""

    planned_steps: tuple[PlannedStep, ...] = ()
    """The steps a deterministic run will take, in order (empty without
    ``full`` in ``list_runs``)."""


@dataclass(frozen=True)
class PlannedStep:
    """One step a deterministic run will take (``create_run(planned_steps=...)``)."""

    step_name: str
    """The step's name within the run; required."""

    display_name: str = ""
    """How the step is shown; empty means ``step_name``."""


@dataclass(frozen=True)
class RunPage:
    """One page of :meth:`~WorkflowStateClient.list_runs`."""

    runs: list[Run]
    """The page's runs, in the order asked for."""

    next_page_token: str | None
    """Pass it as ``page_token`` for the next page; ``None`` when this page is the last."""


@dataclass(frozen=True)
class LeasePage:
    """One page of :meth:`~WorkflowStateClient.list_leases`."""

    leases: list[LeaseInfo]
    """The leases held, by key."""

    next_page_token: str | None
    """Pass it as ``page_token`` for the next page; ``None`` when this page is the last."""


@dataclass(frozen=True)
class WorkflowSummary:
    """One workflow of :meth:`~WorkflowStateClient.list_workflows`: how many runs it has in each status."""

    workflow: str
    """The workflow's name."""

    run_counts: dict[RunStatus, int]
    """Runs per status; every status is a key (0 when it has none)."""


@dataclass(frozen=True)
class StepOptions:
    """A step's retry and dispatch options (``None``: not set). At insert each one a step does not
    set comes from its rpc name's :class:`DispatchDefaults`; the README's "Remote mode" has the
    exact semantics."""

    retries: int | None = None
    """How many extra attempts after the first; not negative."""

    retry_delay: timedelta | None = None
    """The wait before the first automatic retry; not negative."""

    backoff_coefficient: float | None = None
    """The growth of the wait per failed attempt (at least 1; ``None``: 1, a fixed wait): the
    retry after attempt n waits ``min(retry_delay * backoff_coefficient ** (n - 1), max_retry_delay)``."""

    max_retry_delay: timedelta | None = None
    """The cap of a retry's wait; ``None``: no cap."""

    jitter: float | None = None
    """The largest fraction taken off a retry's wait at random, 0 to 1."""

    start_to_close: timedelta | None = None
    """The longest an attempt handed to a worker may run: then it fails "timed out"
    (``START_TO_CLOSE_TIMEOUT``) and is retried like any failure, heartbeats or not."""

    schedule_to_start: timedelta | None = None
    """The longest a scheduled attempt waits, from its due time, for a worker: then the step fails
    "timed out" (``SCHEDULE_TO_START_TIMEOUT``), without retry."""

    priority: int | None = None
    """Higher is claimed first among due steps; ``None``: 0."""

    concurrency_key: str | None = None
    """Steps of one key run at most ``concurrency_limit`` (of the rpc name's defaults) at a time."""


@dataclass(frozen=True)
class DispatchDefaults:
    """The dispatch defaults of one rpc name (:meth:`~WorkflowStateClient.set_dispatch_defaults`)."""

    rpc_name: str
    """The rpc name they apply to."""

    options: StepOptions
    """The options a step of this rpc name takes at insert for each it does not set (no key)."""

    concurrency_limit: int | None
    """At most this many attempts of one concurrency key run at once; ``None``: no limit."""

    rate_limit: int | None
    """At most this many steps claimed per ``rate_period`` (a token bucket); ``None``: no limit."""

    rate_period: timedelta | None
    """The period of ``rate_limit``."""

    update_time: datetime
    """When they were last set (UTC)."""


@dataclass(frozen=True)
class RetentionPolicy:
    """A retention policy (:meth:`~WorkflowStateClient.set_retention_policy`): every server erases
    the runs of ``workflow`` in one of ``statuses`` that finished longer than ``keep`` ago."""

    policy_id: int
    """The policy's id; it stays the same when the policy is set again."""

    workflow: str | None
    """The workflow whose runs it erases; ``None`` for every workflow."""

    statuses: tuple[RunStatus, ...]
    """The finished statuses whose runs it erases, in RunStatus order."""

    keep: timedelta
    """How long a run is kept after it finished (its ``update_time``)."""

    create_time: datetime
    """When the policy was first set (UTC)."""

    update_time: datetime
    """When the policy was last set (UTC)."""


class ScheduleOverlap(enum.Enum):
    """What a schedule's occurrence does while its latest run has not finished."""

    SKIP = "skip"
    """Make no run for it (counted in ``Schedule.overlap_skips``); the next occurrence looks again."""

    ALLOW = "allow"
    """Make its run anyway."""


class ScheduleCatchUp(enum.Enum):
    """What runs for a schedule's occurrences no server handled in time (the servers were down).

    Only the latest due occurrence may ever run, and always does when it is at most 60 seconds
    late; older, this decides."""

    SKIP = "skip"
    """Run none more than 60 seconds late."""

    LATEST = "latest"
    """Run the latest however late, once: one run for the whole gap."""


@dataclass(frozen=True)
class Schedule:
    """A schedule (:meth:`~WorkflowStateClient.create_schedule`): the servers create a run of
    ``workflow`` with ``input`` at each occurrence of ``cron`` (in ``timezone``) or ``interval``."""

    schedule_id: str
    """The schedule's id, chosen by its creator."""

    workflow: str
    """The workflow of the runs it creates."""

    cron: str | None
    """Its 5-field cron expression; ``None`` for an interval schedule."""

    interval: timedelta | None
    """Its interval (occurrences at its multiples since the Unix epoch); ``None`` for a cron schedule."""

    timezone: str
    """The IANA timezone the cron expression is read in (``"UTC"`` for an interval)."""

    input: Any
    """The input of each run, decoded from JSON."""

    overlap: ScheduleOverlap
    """What an occurrence does while the latest run has not finished."""

    catch_up: ScheduleCatchUp
    """What runs for occurrences no server handled in time."""

    paused: bool
    """Whether it is paused (:meth:`~WorkflowStateClient.pause_schedule`)."""

    next_fire_time: datetime | None
    """Its next occurrence (UTC); ``None`` while paused."""

    last_run_id: str | None
    """Its latest run (of its latest occurrence); ``None`` when it made none."""

    last_schedule_time: datetime | None
    """The occurrence of its latest run (UTC)."""

    last_run_status: RunStatus | None
    """Its latest run's status now."""

    overlap_skips: int
    """Occurrences that made no run because the latest run had not finished."""

    create_time: datetime
    """When it was created (UTC)."""

    update_time: datetime
    """When it was last created, paused, resumed or fired (UTC)."""


@dataclass(frozen=True)
class SchedulePage:
    """One page of :meth:`~WorkflowStateClient.list_schedules`."""

    schedules: list[Schedule]
    """The page's schedules, by id."""

    next_page_token: str | None
    """Pass it as ``page_token`` for the next page; ``None`` when this page is the last."""


@dataclass(frozen=True)
class WorkerInfo:
    """A worker connected to a server (:meth:`~WorkflowStateClient.list_workers`), one per stream."""

    worker_id: str
    """The name the worker subscribed with."""

    stream_id: str
    """Its stream's id (a worker that reconnects gets a new one)."""

    rpc_names: list[str]
    """The functions it runs."""

    max_in_flight: int
    """The most tasks it runs at once."""

    tasks_in_flight: int
    """How many tasks it held at its last heartbeat."""

    task_lease: timedelta
    """Its stream's task lease."""

    connect_time: datetime
    """When its stream subscribed (UTC)."""

    heartbeat_time: datetime
    """Its last heartbeat (UTC)."""

    server_id: str
    """The server process it is connected to."""

    server_address: str
    """That server's address (host:port)."""


@dataclass(frozen=True)
class StepState:
    """The current state of one step of a run: its latest attempt."""

    step_id: str
    """The step's UUID; it stays the same across retry attempts."""

    run_id: str
    """The UUID of the run the step belongs to."""

    step_name: str
    """The step's name, unique within its run."""

    rpc_name: str
    """The function that runs the step."""

    data: Any
    """The step's input, decoded from JSON."""

    status: StepStatus
    """The status of the current attempt."""

    result: Any
    """The current attempt's result, decoded from JSON; ``None`` until it succeeds."""

    error: Failure | None
    """Why the current attempt failed; ``None`` unless it failed."""

    attempt_count: int
    """The number of the current attempt, starting at 1."""

    retries: int | None
    """How many extra attempts the step may have; ``None`` when not given."""

    retry_delay: timedelta | None
    """How long to wait before a retry; ``None`` when not given."""

    create_time: datetime
    """When the step was inserted (UTC)."""

    update_time: datetime
    """When the step last changed (UTC)."""

    scheduled_time: datetime | None
    """When the current attempt was scheduled; ``None`` if it was not."""

    running_time: datetime | None
    """When the current attempt started running; ``None`` if it did not."""

    succeeded_time: datetime | None
    """When the current attempt succeeded; ``None`` if it did not."""

    failed_time: datetime | None
    """When the current attempt failed; ``None`` if it did not."""

    not_before: datetime | None
    """The earliest time a worker may get the current attempt; ``None`` unless it is SCHEDULED."""

    worker_id: str | None
    """The worker running the current attempt through a ``Worker``; ``None`` otherwise."""

    from_step_name: str | None = None
    """The step this one follows, as inserted; ``None`` if none."""

    child_run_id: str | None = None
    """The run the current attempt started as its child (``set_step_child_run``); ``None`` if none."""

    branch_key: str | None = None
    """The branch the current attempt took (``set_step_branch``); ``None`` if none."""

    options: StepOptions = field(default_factory=StepOptions)
    """The step's retry and dispatch options as stored (its rpc name's defaults filled in at insert)."""


@dataclass(frozen=True)
class ClaimedStep:
    """What :meth:`~WorkflowStateClient.claim_step` did."""

    claimed: bool
    """True when this call took the step to RUNNING: the caller must now run it.
    False when it was RUNNING, SUSPENDED or SUCCEEDED already (nothing written)."""

    step: StepState
    """The step after the call: as written when claimed, as it is otherwise."""


@dataclass(frozen=True)
class StepRef:
    """One step of one run (:meth:`~WorkflowStateClient.list_undispatched_steps`)."""

    run_id: str
    """The UUID of the run."""

    step_id: str
    """The UUID of the step."""


@dataclass(frozen=True)
class WorkflowVersion:
    """One version of a workflow's graph, named by its hash."""

    workflow: str
    """The workflow's name."""

    graph_hash: str
    """The hash that names this version."""

    graph: Any
    """The version's graph, decoded from JSON."""

    source: str
    """Where the graph came from (Pikku: ``"dsl"``, ``"graph"``...); empty if not said."""

    status: WorkflowVersionStatus
    """The version's status."""

    create_time: datetime
    """When the version was first recorded (UTC)."""

    update_time: datetime
    """When the version last changed (UTC)."""


@dataclass(frozen=True)
class UpsertedVersion:
    """What :meth:`~WorkflowStateClient.upsert_workflow_version` did."""

    version: WorkflowVersion
    """The version as stored: the new one, or the one that existed (unchanged)."""

    created: bool
    """True when this call created the version. A call retried after a lost
    reply says False although its first attempt created it."""


@dataclass(frozen=True)
class StepAttempt:
    """One attempt of a step, as kept in its run's history."""

    step_id: str
    """The UUID of the step."""

    step_name: str
    """The step's name within its run."""

    attempt: int
    """The attempt's number, starting at 1."""

    status: StepStatus
    """The attempt's last status."""

    result: Any
    """The attempt's result, decoded from JSON; ``None`` unless it succeeded."""

    error: Failure | None
    """Why the attempt failed; ``None`` unless it failed."""

    create_time: datetime
    """When the attempt began (UTC)."""

    update_time: datetime
    """When the attempt last changed (UTC)."""

    scheduled_time: datetime | None = None
    """When the attempt was scheduled; ``None`` if never."""

    running_time: datetime | None = None
    """When the attempt started running; ``None`` if never."""

    succeeded_time: datetime | None = None
    """When the attempt succeeded; ``None`` if it did not."""

    failed_time: datetime | None = None
    """When the attempt failed; ``None`` if it did not."""


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds the lease on a key, as the server reports it (``get_lease``)."""

    key: str
    """The lease's key, e.g. ``"run:<run_id>"``."""

    holder: str
    """The text the holder gave when it acquired the lease (host and pid by default)."""

    fencing_token: int
    """The holder's fencing token."""

    acquire_time: datetime
    """When the holder got the lease (UTC)."""

    expire_time: datetime
    """When the lease ends unless kept alive (UTC)."""


_FINISHED_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


@dataclass(frozen=True)
class StepChange:
    """A step attempt that was created or changed status, as told by a :class:`RunEvent`."""

    step_id: str
    """The UUID of the step."""

    step_name: str
    """The step's name within its run."""

    attempt: int
    """The attempt's number, starting at 1."""

    status: StepStatus
    """The attempt's status after the change."""


@dataclass(frozen=True)
class RunEvent:
    """One change of a run or of one of its step attempts (``watch_run``, ``stream_run_events``).

    Exactly one of ``run_status`` and ``step`` is set: the run was created or
    changed status, or one of its step attempts was. (Both are ``None`` only
    for a kind of change newer than this client.)
    """

    event_id: int
    """The event's id; pass the last one received as ``after_event_id`` to resume after it.

    Events come in a stable order that is not always increasing id: resume
    from the last event received, not from the highest id.
    """

    run_id: str
    """The UUID of the run."""

    workflow: str
    """The name of the run's workflow."""

    event_time: datetime
    """When the change was made (UTC)."""

    run_status: RunStatus | None
    """The run's status after the change; ``None`` when a step changed."""

    step: StepChange | None
    """The step attempt that changed; ``None`` when the run changed."""

    @property
    def finishes_run(self) -> bool:
        """True for the run's move to COMPLETED, FAILED or CANCELLED: no event of the run follows it."""
        return self.run_status in _FINISHED_RUN_STATUSES


class TaskCancellation(threading.Event):
    """A task's ``cancelled``: set when the server asks the worker to stop the task.

    The task's run was cancelled (or finished otherwise) while the task ran,
    or the attempt ran past its ``start_to_close`` (the reason then starts
    with "timed out"; the server fails the attempt and retries the step by
    its policy), and whatever the handler reports for it will be refused. A handler that
    runs long checks ``task.cancelled.is_set()`` (or waits on it) and returns
    early; an async handler is also cancelled (``asyncio.CancelledError``).
    """

    reason: str | None = None
    """Why, as the server said (the cancel's reason); ``None`` until set."""

    def cancel(self, reason: str) -> None:
        self.reason = reason
        self.set()


@dataclass(frozen=True)
class StepTask:
    """One attempt of a step handed to a worker's handler (see ``Worker``)."""

    step_id: str
    """The UUID of the step."""

    run_id: str
    """The UUID of the run the step belongs to."""

    step_name: str
    """The step's name within its run."""

    rpc_name: str
    """The function to run: the key of the handler that gets the task."""

    data: Any
    """The step's input, decoded from JSON."""

    attempt: int
    """The attempt's number, starting at 1."""

    deadline: datetime
    """When the server declares the attempt lost unless it hears from the worker (UTC).

    The worker's heartbeats keep moving it, but never past ``timeout_time``;
    it is the deadline as the task was handed out.
    """

    timeout_time: datetime | None = None
    """When the attempt times out (its step's ``start_to_close`` from the claim), whatever the
    heartbeats: the server then fails it and refuses its result. ``None`` without a timeout."""

    cancelled: TaskCancellation = field(default_factory=TaskCancellation, compare=False, repr=False)
    """Set when the server asks to stop the task (its run was cancelled); see :class:`TaskCancellation`."""
