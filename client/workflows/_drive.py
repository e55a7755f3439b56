"""One drive of one run: take the run's lease, replay the workflow from the history, write what is new.

Every write goes through the lease's fenced client, so a drive that lost its lease (paused, cut
off) is refused by the server and writes nothing; the engine that took the lease over goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from workflowstate.client import (
    AsyncLease,
    AsyncWorkflowStateClient,
    DeadlineExceeded,
    Failure,
    Run,
    RunStatus,
    WorkflowStateError,
)

from ._context import WorkflowContext
from ._definition import Registry, Workflow
from ._errors import NON_DETERMINISM, Interrupted, StepFailed
from ._history import History
from ._log_fields import about
from ._metrics import DriveEnd, EngineMetrics, TakenBy
from ._signals import RunSignals

log = logging.getLogger("workflowstate.workflows")

STALE_FENCE = "STALE_FENCE"
"""The server's reason for a write whose fencing token is no longer its lease's latest: another engine took the run."""

Register = Callable[[str, RunSignals], AbstractContextManager[Callable[[str], None]]]
"""How a drive tells the engine where to deliver its run's events; gives back how to follow a child run."""


@dataclass(frozen=True)
class DriveSettings:
    """What every drive of one engine shares."""

    holder: str
    """The lease holder's name: the engine."""

    lease_ttl: timedelta
    """The run lease's ttl: how long after its engine died a run waits for another."""

    poll_interval: float
    """Seconds a waiting step goes without an event before it reads its step again."""

    metrics: EngineMetrics
    """Told what the drives do."""


def _run_failure(error: BaseException) -> Failure:
    """How an exception out of the workflow is stored as the run's error."""
    if isinstance(error, StepFailed):
        return Failure(str(error), stack=error.failure.stack, code=error.failure.code or "StepFailed")
    return Failure.from_exception(error)


async def drive(
    client: AsyncWorkflowStateClient, registry: Registry, run_id: str, settings: DriveSettings,
    draining: asyncio.Event, register: Register, taken_by: TakenBy,
) -> bool:  # fmt: skip
    """Drive the run if its lease is free; False when another engine holds it. ``taken_by``: what made the engine try."""
    try:
        lease_hold = client.run_lock(run_id, ttl=settings.lease_ttl, wait_timeout=timedelta(0), holder=settings.holder)
        async with lease_hold as lease:
            await _drive_held(client, registry, run_id, settings, draining, register, lease, taken_by)
    except DeadlineExceeded:
        return False  # held: its engine drives it
    return True


async def _drive_held(
    client: AsyncWorkflowStateClient, registry: Registry, run_id: str, settings: DriveSettings,
    draining: asyncio.Event, register: Register, lease: AsyncLease, taken_by: TakenBy,
) -> None:  # fmt: skip
    # Read after the lease is ours: whatever an earlier holder wrote is in.
    run = await client.get_run(run_id)
    if run is None or run.status is not RunStatus.RUNNING:
        return
    workflow = registry.get(run.workflow, run.graph_hash)
    if workflow is None:
        log.debug("workflow %s run %s: version %r is not this engine's", run.workflow, run_id, run.graph_hash or "",
                  extra=about(run.workflow, run_id))  # fmt: skip
        return
    settings.metrics.run_taken(run.workflow, taken_by)
    outcome: DriveEnd = "stopped"  # also when the drive ends unexpectedly: the next drive goes on
    try:
        outcome = await _drive_taken(client, run, workflow, settings, draining, register, lease)
    finally:
        settings.metrics.drive_ended(run.workflow, outcome)


async def _drive_taken(
    client: AsyncWorkflowStateClient, run: Run, workflow: Workflow, settings: DriveSettings,
    draining: asyncio.Event, register: Register, lease: AsyncLease,
) -> DriveEnd:  # fmt: skip
    """Replay the run this drive took and write what is new; how the drive ended."""
    run_id = run.run_id
    fields = about(run.workflow, run_id)
    steps, attempts, state = await asyncio.gather(
        client.list_steps(run_id), client.get_run_history(run_id), client.get_run_state(run_id)
    )
    signals = RunSignals([draining, lease.lost])
    with register(run_id, signals) as watch_child:
        ctx = WorkflowContext(
            run, client, lease.client, History(steps, attempts), state, signals, settings.poll_interval, watch_child,
            settings.metrics,
        )  # fmt: skip
        try:
            return await _replay(workflow, ctx, run, lease)
        except Interrupted:
            if lease.lost.is_set():
                why = f"its lease was lost ({lease.lost_reason})"
            else:
                why = "the engine is stopping" if draining.is_set() else "the run was finished by someone else"
            log.info("workflow %s run %s: drive stopped, %s; the next drive goes on from its history", run.workflow, run_id, why,
                     extra=fields)  # fmt: skip
            return "stopped"
        except WorkflowStateError as error:
            # Refused (a stale fence: another engine has the run; the run was cancelled) or the
            # server is away: nothing of this drive's last write was made. The run goes on with
            # whoever holds its lease, or the next drive.
            if error.reason == STALE_FENCE:
                settings.metrics.fence_refused(run.workflow)
            log.warning("workflow %s run %s: a write was refused: %s (reason %s)", run.workflow, run_id, error, error.reason,
                        extra=fields | {"reason": error.reason})  # fmt: skip
            return "refused"


async def _replay(workflow: Workflow, ctx: WorkflowContext, run: Run, lease: AsyncLease) -> DriveEnd:
    """Run the workflow function to its end and record the run's outcome: completed or failed."""
    writer = lease.client
    failure: BaseException | None
    try:
        output: Any = await workflow(ctx, run.input)
    except (Interrupted, WorkflowStateError):
        if ctx.nondeterminism is None:
            raise
        output, failure = None, ctx.nondeterminism
    except Exception as error:
        output, failure = None, ctx.nondeterminism or error
    else:
        failure = ctx.nondeterminism
    if failure is None:
        try:
            await writer.update_run_status(run.run_id, RunStatus.COMPLETED, output=output)
        except (TypeError, ValueError) as error:  # the output is no JSON value: the run cannot complete
            failure = error
        else:
            log.info("workflow %s run %s completed", run.workflow, run.run_id, extra=about(run.workflow, run.run_id))
            return "completed"
    stored = _run_failure(failure)
    if failure is ctx.nondeterminism:
        stored = Failure(stored.message, stack=stored.stack, code=NON_DETERMINISM)
    await writer.update_run_status(run.run_id, RunStatus.FAILED, error=stored)
    log.info("workflow %s run %s failed: %s", run.workflow, run.run_id, stored.message, extra=about(run.workflow, run.run_id))
    return "failed"
