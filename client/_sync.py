# Generated from client/_async.py by scripts/async_to_sync.py: do not edit.
# Change client/_async.py and run `python scripts/async_to_sync.py`.
"""The blocking client, over a ``grpc`` channel."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import grpc

from workflowstate.v1 import workflow_state_pb2_grpc

from . import _calls
from ._batch_sync import SyncSender
from ._batch_protocol import Batching, batching_of
from ._calls import UNSET, Call, Fence, RunEngineFields, RunFilter
from ._channel import (
    DEFAULT_RETRY_POLICY,
    bearer,
    channel_credentials,
    open_channel_sync,
    separate_connections,
    warn_if_token_in_clear,
)
from ._channel import channel_options as _channel_options
from ._events import EventFeed
from ._events_sync import follow_sync
from ._identity import host_and_pid
from ._lease_sync import Lease, hold_lease
from ._lease_protocol import LeaseTerms, run_lock_key, step_lock_key
from ._reconnect import ReconnectPolicy
from ._types import (
    ClaimedStep,
    DispatchDefaults,
    Failure,
    LeaseInfo,
    LeasePage,
    PlannedStep,
    RetentionPolicy,
    Run,
    RunEvent,
    RunPage,
    RunStatus,
    Schedule,
    ScheduleCatchUp,
    ScheduleOverlap,
    SchedulePage,
    StepAttempt,
    StepRef,
    StepOptions,
    StepState,
    StepStatus,
    UpsertedVersion,
    WorkerInfo,
    WorkflowSummary,
    WorkflowVersion,
    WorkflowVersionStatus,
)

R = TypeVar("R")


class WorkflowStateClient:
    """A blocking client of a workflowstate server.

    Use it as a context manager, or call :meth:`close`, to release the channel::

        with WorkflowStateClient("localhost:50051") as client:
            run = client.create_run("checkout", {"cart": 42})

    Every method takes a keyword-only ``timeout`` that replaces the client's
    default for that call (``None`` keeps the default). Failures of the server
    raise :class:`WorkflowStateError` subclasses; the safe RPCs are retried by
    gRPC on UNAVAILABLE before that (see ``retry``). Thread-safe, like the
    gRPC channel it wraps.

    Every write (``update_run_status``, ``insert_step_state``, ``set_step_*``,
    ``create_retry_attempt``, ``claim_step``, ``update_run_state``) takes keyword-only ``fencing_token`` and
    ``lease_key``: with a token, the server makes the write only if no higher
    token was granted on ``lease_key`` since (the run's key ``"run:<run_id>"``
    when omitted), and raises FailedPrecondition otherwise. ``lease.client``
    passes them for you.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: bool | grpc.ChannelCredentials = False,
        timeout: timedelta | None = timedelta(seconds=30),
        retry: bool = True,
        channel_options: Sequence[tuple[str, Any]] = (),
        connections: int = 1,
        batching: bool | Batching = True,
        token: str | None = None,
    ) -> None:
        """Open a channel to ``target`` (``"host:port"``); gRPC connects lazily, on the first call.

        Args:
            target: The server's address, e.g. ``"localhost:50051"``.
            tls: ``False`` for plaintext, ``True`` for TLS with the system's
                root certificates, or the credentials to use.
            timeout: The default deadline of each call; ``None`` for none.
            retry: Let gRPC retry the RPCs that are safe to repeat when the
                server answers UNAVAILABLE (5 attempts, exponential backoff).
            channel_options: Extra gRPC channel options; on the same key they
                win over the client's own.
            connections: How many connections (each its own TCP connection) to
                open to ``target``; calls and streams take them in turn. With
                ``workflowstate serve --workers N`` the kernel gives each
                connection to one server process, so N connections spread one
                client over N processes.
            batching: Send calls made at the same moment together, as one
                ``Batch`` call: each keeps its own result, error and retries,
                exactly as if sent alone, and a lone call goes out at once.
                ``False`` sends every call on its own; ``Batching(...)``
                changes the window and the size of a batch.
            token: The bearer token every call and stream sends (as
                ``authorization: Bearer <token>`` metadata), for a server
                started with ``--auth-tokens``; ``None`` takes it from the
                environment variable ``WORKFLOWSTATE_TOKEN`` when set. Send it
                over TLS only, unless the server is on this machine.
        """
        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections}")
        credentials = channel_credentials(tls)
        options = _channel_options(retry=retry, extra=separate_connections(connections, channel_options))
        authorization = bearer(token)
        warn_if_token_in_clear(target, credentials, authorization)
        self._channels = [open_channel_sync(target, credentials, options, authorization) for _ in range(connections)]
        self._stubs = itertools.cycle([workflow_state_pb2_grpc.WorkflowStateServiceStub(channel) for channel in self._channels])
        self._timeout = timeout
        self._sender = SyncSender(
            lambda: next(self._stubs),
            batching_of(batching),
            DEFAULT_RETRY_POLICY if retry else None,
            connections=connections,
        )

    @property
    def _stub(self) -> workflow_state_pb2_grpc.WorkflowStateServiceStub:
        """The stub of the next connection in turn."""
        return next(self._stubs)

    def close(self) -> None:
        """Close the channels; any later call raises ``ValueError``."""
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> WorkflowStateClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _invoke(self, call: Call[R], timeout: timedelta | None) -> R:
        return self._sender.send(call, _calls.timeout_seconds(timeout, self._timeout))

    # --- runs ----------------------------------------------------------------

    def create_run(
        self,
        workflow: str,
        input: Any = None,
        *,
        request_id: str | None = None,
        inline: bool = False,
        graph_hash: str = "",
        metadata: Any = None,
        deterministic: bool = False,
        planned_steps: Sequence[PlannedStep] = (),
        timeout: timedelta | None = None,
    ) -> Run:
        """Start a run of ``workflow`` with ``input`` (any JSON value), in status RUNNING.

        ``request_id`` is an idempotency key: the same key returns the same run.
        Without one the client generates one per call, so gRPC's retries of
        this call cannot create a second run.

        What an engine keeps with the run, stored and returned as given:
        ``inline`` (the run executes in the process that started it),
        ``graph_hash`` (the version of the workflow's graph it follows, at
        most 256 characters), ``metadata`` (any JSON value; ``None`` for
        none), ``deterministic`` and its ``planned_steps`` (at most 1000).
        """
        engine = RunEngineFields(inline, graph_hash, metadata, deterministic, tuple(planned_steps))
        return self._invoke(_calls.create_run(workflow, input, request_id, engine), timeout)

    def get_run(self, run_id: str, *, timeout: timedelta | None = None) -> Run | None:
        """The run with id ``run_id``, or ``None`` when there is none."""
        return self._invoke(_calls.get_run(run_id), timeout)

    def get_run_history(self, run_id: str, *, timeout: timedelta | None = None) -> list[StepAttempt]:
        """Every attempt of every step of the run, oldest first. NotFound for a missing run."""
        return self._invoke(_calls.get_run_history(run_id), timeout)

    def update_run_status(
        self,
        run_id: str,
        status: RunStatus,
        *,
        output: Any = UNSET,
        error: Failure | BaseException | None = None,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> Run:
        """Finish a run as COMPLETED, FAILED or CANCELLED, or suspend it (SUSPENDED) and let it
        go on (RUNNING) or finish from there, and return it.

        ``output`` (any JSON value, ``None`` included) and ``error`` are stored
        when given and left unchanged when omitted, except that a move to
        RUNNING or COMPLETED without ``error`` clears the stored one (it
        described the suspension). Repeating the run's current status is a
        no-op; any other change of a finished run is FailedPrecondition.
        """
        return self._invoke(
            _calls.update_run_status(run_id, status, output, error, Fence(fencing_token, lease_key)),
            timeout,
        )

    # --- managing runs -------------------------------------------------------

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        oldest_first: bool = False,
        page_size: int | None = None,
        page_token: str | None = None,
        full: bool = False,
        timeout: timedelta | None = None,
    ) -> RunPage:
        """One page of the runs that match, newest first (``oldest_first`` for the other way).

        Every filter given must match: ``workflow``, any one of ``statuses``,
        ``created_after`` <= create_time < ``created_before``, and the same for
        update_time (timezone-aware datetimes). ``page_size`` is 1 to 1000
        (``None``: 50). Pass the page's ``next_page_token`` as ``page_token``
        with the same filters for the next page: runs created meanwhile never
        make a run appear twice or go missing. Without ``full`` the runs come
        without their payloads (``input`` and ``output`` ``None``, no error
        stack). InvalidArgument for a token of another query.
        """
        runs = RunFilter(workflow, tuple(statuses), created_after, created_before, updated_after, updated_before)
        return self._invoke(_calls.list_runs(runs, oldest_first, page_size, page_token, full), timeout)

    def iter_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        oldest_first: bool = False,
        page_size: int | None = None,
        full: bool = False,
        timeout: timedelta | None = None,
    ) -> Iterator[Run]:
        """Every run that matches, walking the pages of :meth:`list_runs` (one call per page)."""
        runs = RunFilter(workflow, tuple(statuses), created_after, created_before, updated_after, updated_before)
        token: str | None = None
        while True:
            page = self._invoke(_calls.list_runs(runs, oldest_first, page_size, token, full), timeout)
            for run in page.runs:
                yield run
            token = page.next_page_token
            if token is None:
                return

    def cancel_run(self, run_id: str, *, reason: str | None = None, timeout: timedelta | None = None) -> Run:
        """Cancel a RUNNING or SUSPENDED run and return it, CANCELLED with ``reason`` as its error.

        Its steps not started are never handed to a worker; a ``Worker``
        running one of its attempts sees ``task.cancelled`` set (an async
        handler is cancelled too), and any result for that attempt is refused.
        Cancelling a cancelled run is a no-op; a COMPLETED or FAILED run is
        FailedPrecondition, an unknown one NotFound.
        """
        return self._invoke(_calls.cancel_run(run_id, reason), timeout)

    def cancel_runs(
        self,
        *,
        workflow: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        max_runs: int = 1000,
        reason: str | None = None,
        statuses: Sequence[RunStatus] = (),
        timeout: timedelta | None = None,
    ) -> list[str]:
        """Cancel up to ``max_runs`` (1 to 10,000) RUNNING or SUSPENDED runs that match, oldest
        first, as :meth:`cancel_run` does each; return their ids. The filters are
        :meth:`list_runs`'s (``statuses``: RUNNING and/or SUSPENDED; empty: both). Call it again
        while it returns ``max_runs`` ids to cancel more."""
        runs = RunFilter(workflow, tuple(statuses), created_after, created_before, updated_after, updated_before)
        return self._invoke(_calls.cancel_runs(runs, max_runs, reason), timeout)

    def delete_run(self, run_id: str, *, force: bool = False, timeout: timedelta | None = None) -> None:
        """Erase the run with its steps, attempts and events, in one transaction.

        A RUNNING or SUSPENDED run only with ``force`` (else FailedPrecondition); NotFound
        for an unknown run, so a repeat after a lost reply says NotFound (never
        retried automatically). Leases (free-text keys) are left as they are.
        """
        self._invoke(_calls.delete_run(run_id, force), timeout)

    def delete_runs(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        max_runs: int = 1000,
        force: bool = False,
        timeout: timedelta | None = None,
    ) -> list[str]:
        """Erase up to ``max_runs`` (1 to 1000) runs that match, oldest first, as :meth:`delete_run`
        does each, in one transaction; return their ids. Without ``force`` RUNNING and SUSPENDED
        runs are left out. The filters are :meth:`list_runs`'s; call again while it returns ``max_runs`` ids."""
        runs = RunFilter(workflow, tuple(statuses), created_after, created_before, updated_after, updated_before)
        return self._invoke(_calls.delete_runs(runs, max_runs, force), timeout)

    def list_steps(self, run_id: str, *, timeout: timedelta | None = None) -> list[StepState]:
        """Every step of the run, in the order they were inserted, each at its current attempt
        (status, ``attempt_count``, ``rpc_name``, times, ``worker_id``). NotFound for a missing run."""
        return self._invoke(_calls.list_steps(run_id), timeout)

    def list_workflows(self, *, timeout: timedelta | None = None) -> list[WorkflowSummary]:
        """Every workflow that has runs, by name, with how many runs it has in each status."""
        return self._invoke(_calls.list_workflows(), timeout)

    # --- retention and workers -----------------------------------------------

    def set_retention_policy(
        self,
        *,
        keep: timedelta,
        workflow: str | None = None,
        statuses: Sequence[RunStatus] = (),
        timeout: timedelta | None = None,
    ) -> RetentionPolicy:
        """Make every server erase the runs of ``workflow`` (``None``: of every workflow) in one of
        ``statuses`` (finished ones only; empty: all three) once they finished longer than ``keep``
        ago, in small batches in the background, as :meth:`delete_run` erases each.

        A policy is known by its workflow and its set of statuses: setting the same pair again
        replaces its ``keep`` and keeps its ``policy_id``, so a repeat is harmless. InvalidArgument
        for RUNNING in ``statuses`` or a ``keep`` that is not positive or over a century.
        """
        return self._invoke(_calls.set_retention_policy(workflow, tuple(statuses), keep), timeout)

    def list_retention_policies(self, *, timeout: timedelta | None = None) -> list[RetentionPolicy]:
        """Every retention policy, by ``policy_id``."""
        return self._invoke(_calls.list_retention_policies(), timeout)

    def delete_retention_policy(self, policy_id: int, *, timeout: timedelta | None = None) -> None:
        """Remove a retention policy (runs it has not erased yet stay). NotFound for an unknown
        id, so a repeat after a lost reply says NotFound (never retried automatically)."""
        self._invoke(_calls.delete_retention_policy(policy_id), timeout)

    def set_dispatch_defaults(
        self,
        rpc_name: str,
        *,
        options: StepOptions | None = None,
        concurrency_limit: int | None = None,
        rate_limit: int | None = None,
        rate_period: timedelta | None = None,
        timeout: timedelta | None = None,
    ) -> DispatchDefaults:
        """Set (replace) the dispatch defaults of ``rpc_name`` on every server: the ``options``
        its steps take at insert when they set none of their own (no ``concurrency_key``), how
        many attempts of one concurrency key may run at once, and a rate limit of ``rate_limit``
        claims per ``rate_period``. Limits apply at once to steps already waiting. Needs an admin
        token on a server with auth. InvalidArgument naming the field for a bad value."""
        call = _calls.set_dispatch_defaults(rpc_name, options or StepOptions(), concurrency_limit, rate_limit, rate_period)
        return self._invoke(call, timeout)

    def list_dispatch_defaults(self, *, timeout: timedelta | None = None) -> list[DispatchDefaults]:
        """Every rpc name's dispatch defaults, by rpc name."""
        return self._invoke(_calls.list_dispatch_defaults(), timeout)

    def delete_dispatch_defaults(self, rpc_name: str, *, timeout: timedelta | None = None) -> None:
        """Remove the dispatch defaults of ``rpc_name`` (steps keep the options they took). NotFound
        when it has none (never retried automatically)."""
        self._invoke(_calls.delete_dispatch_defaults(rpc_name), timeout)

    def list_workers(self, *, timeout: timedelta | None = None) -> list[WorkerInfo]:
        """The workers connected now to any server sharing the schema, one per stream, by connect
        time: their rpc names, tasks in flight (at their last heartbeat), last heartbeat and server."""
        return self._invoke(_calls.list_workers(), timeout)

    # --- schedules -----------------------------------------------------------

    def create_schedule(
        self,
        schedule_id: str,
        workflow: str,
        input: Any = None,
        *,
        cron: str | None = None,
        interval: timedelta | None = None,
        timezone: str | None = None,
        overlap: ScheduleOverlap = ScheduleOverlap.SKIP,
        catch_up: ScheduleCatchUp = ScheduleCatchUp.SKIP,
        timeout: timedelta | None = None,
    ) -> Schedule:
        """Make the servers create a run of ``workflow`` with ``input`` at each occurrence of
        ``cron`` (5 fields, read in ``timezone``, an IANA name; ``None``: UTC) or of ``interval``
        (its multiples since the Unix epoch, at least the server's ``--schedule-min-interval``: a
        minute unless it is told otherwise), exactly once per occurrence
        across all servers. Each run is an ordinary RUNNING run with ``schedule_id`` and
        ``schedule_time`` set, announced by its run-created event (:meth:`stream_run_events`).

        The same call again returns the schedule as it is; another one with the same
        ``schedule_id`` raises AlreadyExists. InvalidArgument names a bad field.
        """
        call = _calls.create_schedule(schedule_id, workflow, input, cron, interval, timezone, overlap, catch_up)
        return self._invoke(call, timeout)

    def list_schedules(
        self, *, page_size: int | None = None, page_token: str | None = None, timeout: timedelta | None = None
    ) -> SchedulePage:
        """One page of the schedules, by id, each with its next occurrence and its latest run;
        ``page_size`` 1 to 1000 (``None``: 50)."""
        return self._invoke(_calls.list_schedules(page_size, page_token), timeout)

    def iter_schedules(self, *, page_size: int | None = None, timeout: timedelta | None = None) -> Iterator[Schedule]:
        """Every schedule, walking the pages of :meth:`list_schedules` (one call per page)."""
        token: str | None = None
        while True:
            page = self._invoke(_calls.list_schedules(page_size, token), timeout)
            for schedule in page.schedules:
                yield schedule
            token = page.next_page_token
            if token is None:
                return

    def pause_schedule(self, schedule_id: str, *, timeout: timedelta | None = None) -> Schedule:
        """Stop the schedule firing until :meth:`resume_schedule` (a no-op when paused).
        NotFound for an unknown id."""
        return self._invoke(_calls.pause_schedule(schedule_id), timeout)

    def resume_schedule(self, schedule_id: str, *, timeout: timedelta | None = None) -> Schedule:
        """Let a paused schedule fire again from its first occurrence after now: the paused
        time's occurrences never run (a no-op when not paused). NotFound for an unknown id."""
        return self._invoke(_calls.resume_schedule(schedule_id), timeout)

    def delete_schedule(self, schedule_id: str, *, timeout: timedelta | None = None) -> None:
        """Remove the schedule; its runs stay. NotFound for an unknown id (never retried automatically)."""
        self._invoke(_calls.delete_schedule(schedule_id), timeout)

    # --- steps ---------------------------------------------------------------

    def insert_step_state(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        data: Any = None,
        *,
        retries: int | None = None,
        retry_delay: timedelta | None = None,
        from_step_name: str | None = None,
        backoff_coefficient: float | None = None,
        max_retry_delay: timedelta | None = None,
        jitter: float | None = None,
        start_to_close: timedelta | None = None,
        schedule_to_start: timedelta | None = None,
        priority: int | None = None,
        concurrency_key: str | None = None,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Create step ``step_name`` of a running (or suspended) run, PENDING at attempt 1.

        ``rpc_name`` is the function that runs it; ``None`` or ``""`` for a
        step without one (inline work of the workflow's process), which no
        worker is ever handed. ``data`` is the step's input (any JSON value).
        The retry and dispatch options (see :class:`StepOptions`) are the
        server's policy once the step is scheduled for workers; each one not
        given comes from the rpc name's dispatch defaults, if they set it.
        ``from_step_name`` names the step this one follows (a graph's edge; it
        need not exist). AlreadyExists when the run has a step of that name.
        Never retried automatically: a repeat after a lost reply would be
        AlreadyExists.
        """
        options = StepOptions(
            retries,
            retry_delay,
            backoff_coefficient,
            max_retry_delay,
            jitter,
            start_to_close,
            schedule_to_start,
            priority,
            concurrency_key,
        )
        return self._invoke(
            _calls.insert_step_state(run_id, step_name, rpc_name, data, options, Fence(fencing_token, lease_key), from_step_name),
            timeout,
        )

    def get_step_state(self, run_id: str, step_name: str, *, timeout: timedelta | None = None) -> StepState:
        """The current state of the step named ``step_name`` in the run; NotFound when missing."""
        return self._invoke(_calls.get_step_state(run_id, step_name), timeout)

    def set_step_scheduled(
        self,
        step_id: str,
        *,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
        options: StepOptions | None = None,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Move a PENDING step to SCHEDULED: due for a ``Worker`` at once, or later.

        ``not_before`` (a timezone-aware datetime) is the earliest time a
        worker may get the step; ``delay`` says the same relative to the
        server's clock, so clock skew does not matter. Give one, not both
        (``ValueError``). ``options`` replace those of the step's stored
        options that they set (priority, timeouts, ...), from this attempt on.
        """
        return self._invoke(
            _calls.set_step_scheduled(step_id, not_before, delay, Fence(fencing_token, lease_key), options or StepOptions()),
            timeout,
        )

    def set_step_running(
        self,
        step_id: str,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Move a PENDING or SCHEDULED step to RUNNING."""
        return self._invoke(_calls.set_step_running(step_id, Fence(fencing_token, lease_key)), timeout)

    def set_step_result(
        self,
        step_id: str,
        result: Any,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Move a PENDING, SCHEDULED or RUNNING step to SUCCEEDED with ``result``.

        ``result`` is any JSON value. Repeating the same result is a no-op; a
        different one for a succeeded step is FailedPrecondition.
        """
        return self._invoke(_calls.set_step_result(step_id, result, Fence(fencing_token, lease_key)), timeout)

    def set_step_error(
        self,
        step_id: str,
        error: Failure | BaseException,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Move a PENDING, SCHEDULED or RUNNING step to FAILED with ``error``.

        An exception is stored with its message, class name (as ``code``) and
        formatted traceback (as ``stack``); see ``Failure.from_exception``.
        """
        return self._invoke(_calls.set_step_error(step_id, error, Fence(fencing_token, lease_key)), timeout)

    def create_retry_attempt(
        self,
        step_id: str,
        status: StepStatus = StepStatus.PENDING,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Start the next attempt of a FAILED step, in ``status`` PENDING or RUNNING.

        Same step_id, attempt_count + 1, result and error cleared. Never retried
        automatically: a repeat after a lost reply would be FailedPrecondition.
        """
        return self._invoke(_calls.create_retry_attempt(step_id, status, Fence(fencing_token, lease_key)), timeout)

    # --- engine state --------------------------------------------------------

    def set_step_suspended(
        self,
        step_id: str,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Pause a PENDING, SCHEDULED or RUNNING step until something outside the workflow
        resumes it with :meth:`set_step_scheduled`, :meth:`set_step_running`,
        :meth:`set_step_result` or :meth:`set_step_error`. A worker holding the attempt loses
        it (its report is refused). Repeating it is a no-op; any other status is
        FailedPrecondition."""
        return self._invoke(_calls.set_step_suspended(step_id, Fence(fencing_token, lease_key)), timeout)

    def set_step_child_run(
        self,
        step_id: str,
        child_run_id: str,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Record the run the step's current attempt started as its child (a sub-workflow).

        NotFound when the child run does not exist. The same child again is a
        no-op; another child for the same attempt is FailedPrecondition (the
        next attempt starts without one).
        """
        return self._invoke(_calls.set_step_child_run(step_id, child_run_id, Fence(fencing_token, lease_key)), timeout)

    def set_step_branch(
        self,
        step_id: str,
        branch_key: str,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> StepState:
        """Record which branch the step's current attempt took. The same key again is a no-op;
        another key for the same attempt is FailedPrecondition."""
        return self._invoke(_calls.set_step_branch(step_id, branch_key, Fence(fencing_token, lease_key)), timeout)

    def claim_step(
        self,
        run_id: str,
        step_name: str,
        rpc_name: str | None,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> ClaimedStep:
        """Claim the step to run it, in one statement: of callers racing for it, exactly one
        gets ``claimed`` True and must run it.

        A PENDING or SCHEDULED step becomes RUNNING; a FAILED one starts its
        next attempt in RUNNING. A step RUNNING, SUSPENDED or SUCCEEDED comes
        back as it is with ``claimed`` False. ``rpc_name`` must be the step's
        (``None`` or ``""`` for a step without one, which any ``rpc_name``
        claims): FailedPrecondition otherwise. Never retried automatically: a repeat after a lost reply
        would answer ``claimed`` False for the claim the first attempt made.
        """
        return self._invoke(_calls.claim_step(run_id, step_name, rpc_name, Fence(fencing_token, lease_key)), timeout)

    def update_run_state(
        self,
        run_id: str,
        name: str,
        value: Any,
        *,
        fencing_token: int | None = None,
        lease_key: str | None = None,
        timeout: timedelta | None = None,
    ) -> None:
        """Set the run's state variable ``name`` (one key, never a path) to ``value`` (any JSON
        value), in one statement: writers of different names never lose each other's writes.
        ResourceExhausted when the state would grow past the server's payload limit;
        FailedPrecondition for a finished run."""
        self._invoke(_calls.update_run_state(run_id, name, value, Fence(fencing_token, lease_key)), timeout)

    def get_run_state(self, run_id: str, *, timeout: timedelta | None = None) -> dict[str, Any]:
        """The run's state variables by name (empty when none was set); NotFound for a missing run."""
        return self._invoke(_calls.get_run_state(run_id), timeout)

    def upsert_workflow_version(
        self,
        workflow: str,
        graph_hash: str,
        graph: Any,
        source: str = "",
        status: WorkflowVersionStatus | None = None,
        *,
        timeout: timedelta | None = None,
    ) -> UpsertedVersion:
        """Record a version of ``workflow``: its ``graph`` (any JSON value) under ``graph_hash``,
        in ``status`` (``None``: ACTIVE). A version that exists is returned unchanged (a hash
        names one graph) with ``created`` False."""
        return self._invoke(_calls.upsert_workflow_version(workflow, graph_hash, graph, source, status), timeout)

    def get_workflow_version(self, workflow: str, graph_hash: str, *, timeout: timedelta | None = None) -> WorkflowVersion:
        """One version of a workflow; NotFound when it has none with that hash."""
        return self._invoke(_calls.get_workflow_version(workflow, graph_hash), timeout)

    def update_workflow_version_status(
        self, workflow: str, graph_hash: str, status: WorkflowVersionStatus, *, timeout: timedelta | None = None
    ) -> WorkflowVersion:
        """Move a version: DRAFT to ACTIVE or DECLINED, ACTIVE to DECLINED, DECLINED to ACTIVE
        (anything else FailedPrecondition; its own status again is a no-op)."""
        return self._invoke(_calls.update_workflow_version_status(workflow, graph_hash, status), timeout)

    def list_stalled_runs(self, updated_before: datetime, max_runs: int = 100, *, timeout: timedelta | None = None) -> list[str]:
        """Ids of RUNNING runs nothing is moving (no step RUNNING, SCHEDULED or SUSPENDED, and
        neither the run nor a step changed since ``updated_before``), oldest change first, at
        most ``max_runs`` (1 to 1000)."""
        return self._invoke(_calls.list_stalled_runs(updated_before, max_runs), timeout)

    def list_undispatched_steps(
        self, updated_before: datetime, max_steps: int = 100, *, timeout: timedelta | None = None
    ) -> list[StepRef]:
        """PENDING steps of RUNNING runs unchanged since ``updated_before``, oldest change
        first, at most ``max_steps`` (1 to 1000): steps whose dispatch may have been lost."""
        return self._invoke(_calls.list_undispatched_steps(updated_before, max_steps), timeout)

    # --- leases --------------------------------------------------------------

    def lease(
        self,
        key: str,
        *,
        ttl: timedelta = timedelta(seconds=10),
        wait_timeout: timedelta | None = None,
        holder: str | None = None,
    ) -> AbstractContextManager[Lease]:
        """Hold the lease on ``key`` for the duration of a ``with`` block::

            with client.lease("invoice:42", ttl=timedelta(seconds=30)) as lease:
                lease.client.set_step_result(step_id, result)  # fenced

        Entering waits for the key (for ``wait_timeout``; zero tries once,
        ``None`` waits as long as it takes) and raises DeadlineExceeded when
        it stays held, InvalidArgument for an empty key or a ttl the server
        refuses. While the block runs, keepalives every third of ``ttl``
        keep the lease; ``lease.lost`` is set if it is lost anyway. Leaving
        the block, even by an exception, releases the lease, waiting at most
        a few seconds for the server. ``holder`` names this holder in
        :meth:`get_lease`; by default ``"<hostname>:<pid>"``.
        """
        terms = LeaseTerms(key, ttl, wait_timeout, holder or host_and_pid())
        return hold_lease(self._stub, terms, self)

    def run_lock(
        self,
        run_id: str,
        *,
        ttl: timedelta = timedelta(seconds=10),
        wait_timeout: timedelta | None = None,
        holder: str | None = None,
    ) -> AbstractContextManager[Lease]:
        """:meth:`lease` on the run's key, ``"run:<run_id>"``.

        It is the key a fenced write of the run checks when no ``lease_key`` is given.
        """
        return self.lease(run_lock_key(run_id), ttl=ttl, wait_timeout=wait_timeout, holder=holder)

    def step_lock(
        self,
        run_id: str,
        step_name: str,
        *,
        ttl: timedelta = timedelta(seconds=10),
        wait_timeout: timedelta | None = None,
        holder: str | None = None,
    ) -> AbstractContextManager[Lease]:
        """:meth:`lease` on the step's key, ``"step:<run_id>:<step_name>"``."""
        return self.lease(step_lock_key(run_id, step_name), ttl=ttl, wait_timeout=wait_timeout, holder=holder)

    def get_lease(self, key: str, *, timeout: timedelta | None = None) -> LeaseInfo | None:
        """Who holds the lease on ``key``, or ``None`` when the key is free."""
        return self._invoke(_calls.get_lease(key), timeout)

    def list_leases(
        self,
        *,
        key_prefix: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
        timeout: timedelta | None = None,
    ) -> LeasePage:
        """One page of the leases held now (key, holder, fencing token, expiry), by key.

        ``key_prefix`` keeps the keys that start with it (``"run:"``);
        ``page_size`` is 1 to 1000 (``None``: 50). Pass the page's
        ``next_page_token`` as ``page_token``, with the same prefix, for the next.
        """
        return self._invoke(_calls.list_leases(key_prefix, page_size, page_token), timeout)

    # --- events --------------------------------------------------------------

    def watch_run(
        self,
        run_id: str,
        *,
        after_event_id: int = 0,
        reconnect_timeout: timedelta | None = timedelta(seconds=60),
    ) -> Iterator[RunEvent]:
        """The events of one run, in order, until the event that finishes it::

            for event in client.watch_run(run_id):
                if event.step and event.step.status is StepStatus.SUCCEEDED:
                    ...

        ``after_event_id`` resumes after an event already seen (0: from the
        run's first event). When the server goes away (UNAVAILABLE) a new
        stream resumes after the last event received, with backoff, so no
        event is missed or repeated; after ``reconnect_timeout`` of failing
        tries (``None``: never) Unavailable is raised. Other errors raise at
        once, on the first iteration: NotFound for an unknown run or
        ``after_event_id``. Stopping the iteration ends the stream.
        """
        feed = EventFeed.of_run(run_id, after_event_id)
        return follow_sync(self._stub, feed, ReconnectPolicy(give_up_after=reconnect_timeout))

    def stream_run_events(
        self,
        *,
        workflow: str | None = None,
        after_event_id: int = 0,
        reconnect_timeout: timedelta | None = timedelta(seconds=60),
    ) -> Iterator[RunEvent]:
        """The events of every run (of ``workflow`` only, when given), in order, for ever.

        For an orchestrator that serves many runs; the iteration never ends by
        itself. ``after_event_id`` and reconnecting work as in :meth:`watch_run`.
        """
        feed = EventFeed.of_all(workflow, after_event_id)
        return follow_sync(self._stub, feed, ReconnectPolicy(give_up_after=reconnect_timeout))
