"""``WorkflowContext``: what a workflow does durably, each thing a step of its run found again by name on replay."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from workflowstate.client import AsyncWorkflowStateClient, Failure, Run, RunStatus, StepState, StepStatus

from ._errors import ATTEMPT_LOST, NonDeterminismError, StepFailed
from ._history import History
from ._log_fields import about
from ._metrics import AttemptOutcome, EngineMetrics
from ._retry import RetryPolicy
from ._signals import RunSignals
from ._threads import in_daemon_thread

log = logging.getLogger("workflowstate.workflows")

_ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("workflowstate_step_attempt")

# How many event-loop turns a replay lets the workflow's other branches take before it decides that
# a step the history lacks is new: a replayed step answers without I/O, so a branch behind on its
# recorded steps catches up within a few turns, and a replay that makes no progress for
# SETTLED_TURNS turns has reached all it will.
SETTLED_TURNS = 3
MAX_SETTLE_TURNS = 1000

_FINISHED_RUN = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


def _lost_attempt(step: StepState) -> Failure:
    return Failure(
        f"the engine running attempt {step.attempt_count} of step {step.step_name!r} stopped before recording its "
        "outcome; the function may have run",
        code=ATTEMPT_LOST,
    )


class RunState:
    """The run's state variables (``update_run_state`` / ``get_run_state``), read once per drive.

    Only the engine holding the run's lease writes them (fenced), so the copy read at the start of
    the drive plus this drive's own writes is the state.
    """

    def __init__(self, values: dict[str, Any], writer: AsyncWorkflowStateClient, run_id: str, signals: RunSignals) -> None:
        self._values = dict(values)
        self._writer = writer
        self._run_id = run_id
        self._signals = signals

    def get(self, name: str, default: Any = None) -> Any:
        """The variable's value, or ``default`` when it was never set."""
        return self._values.get(name, default)

    async def set(self, name: str, value: Any) -> None:
        """Set the variable (any JSON value), fenced by the run's lease."""
        self._signals.check()
        await self._writer.update_run_state(self._run_id, name, value)
        self._values[name] = value


class WorkflowContext:
    """The first argument of a workflow function: its durable operations.

    Each operation is a step of the run, named by the workflow (or, for ``sleep``, ``now`` and
    ``uuid`` without a name, numbered in the order the replay calls them). On replay, a step the
    history has returns its recorded outcome without running again.
    """

    def __init__(
        self,
        run: Run,
        client: AsyncWorkflowStateClient,
        writer: AsyncWorkflowStateClient,
        history: History,
        state: dict[str, Any],
        signals: RunSignals,
        poll_interval: float,
        watch_child: Callable[[str], None],
        metrics: EngineMetrics,
    ) -> None:
        self._run = run
        self._client = client
        self._writer = writer
        self._history = history
        self._signals = signals
        self._poll_interval = poll_interval
        self._watch_child = watch_child
        self._metrics = metrics
        self._unnamed: dict[str, int] = {}
        self.nondeterminism: NonDeterminismError | None = None
        """Set when the replay found the code changed under the run."""
        self.state = RunState(state, writer, run.run_id, signals)
        """The run's state variables: ``ctx.state.get(name)``, ``await ctx.state.set(name, value)``."""

    @property
    def run_id(self) -> str:
        """The run's UUID."""
        run_id: str = self._run.run_id
        return run_id

    @property
    def workflow(self) -> str:
        """The run's workflow name."""
        name: str = self._run.workflow
        return name

    @property
    def attempt(self) -> int:
        """The attempt number (from 1) of the step whose function is running; only inside a step's function."""
        try:
            return _ATTEMPT.get()
        except LookupError:
            raise RuntimeError("ctx.attempt is only known inside a step's function") from None

    # --- local steps -----------------------------------------------------------------

    async def step(
        self,
        name: str,
        function: Callable[..., Any],
        *args: Any,
        retries: int = 0,
        retry_delay: timedelta = timedelta(0),
        backoff: float = 1.0,
        max_retry_delay: timedelta | None = None,
    ) -> Any:
        """Run ``function(*args)`` here (awaited when it is a coroutine function, else in a thread) as step ``name``,
        and return its result, which must be a JSON value.

        The result or the exception is recorded as the step's attempt. An exception is retried
        ``retries`` times, the n-th retry ``retry_delay * backoff**(n-1)`` after the failure
        (durable: a retry due after a restart waits only what is left); then StepFailed. On
        replay the recorded result comes back and ``function`` is not called. An attempt whose
        engine died before recording its outcome is recorded as lost (code ``AttemptLost``) and
        tried again without counting against ``retries``: a function runs at most once per
        recorded attempt, so make its side effects idempotent.
        """
        policy = RetryPolicy(retries, retry_delay, backoff, max_retry_delay)
        step = await self._open(name)
        if step is None:
            step = self._history.made(
                await self._writer.insert_step_state(
                    self.run_id, name, None, None, retries=retries, retry_delay=retry_delay,
                    backoff_coefficient=backoff, max_retry_delay=max_retry_delay,
                )
            )  # fmt: skip
        while True:
            if step.status is StepStatus.SUCCEEDED:
                return step.result
            if step.status is StepStatus.FAILED:
                failures = self._history.failures_raised(step)
                if not policy.allows_another(failures):
                    assert step.error is not None
                    raise StepFailed(name, step.error)
                if failures > 0:
                    failed_at = (step.failed_time or step.update_time).timestamp()
                    await self._signals.wait_until(failed_at + policy.delay_after(failures).total_seconds())
                    self._metrics.timer_due(self.workflow, "retry_delay")
                self._signals.check()
                step = self._history.made(await self._writer.create_retry_attempt(step.step_id, StepStatus.PENDING))
                continue
            if step.status is StepStatus.SUSPENDED or step.status is StepStatus.SCHEDULED:
                step = await self._wait_for_change(step)
                continue
            if self._history.left_open_by_another_drive(step):
                log.warning("workflow %s run %s step %s: attempt %d was lost with its engine; trying again",
                            self.workflow, self.run_id, name, step.attempt_count,
                            extra=about(self.workflow, self.run_id, name, step.attempt_count))  # fmt: skip
                self._history.count_lost(name)
                step = self._history.update(await self._writer.set_step_error(step.step_id, _lost_attempt(step)))
                self._metrics.step_attempt(self.workflow, name, "lost", None)
                continue
            step, seconds = await self._execute(step, function, args)
            self._metrics.step_attempt(self.workflow, name, self._attempt_outcome(step, policy), seconds)

    def _attempt_outcome(self, step: StepState, policy: RetryPolicy) -> AttemptOutcome:
        """How the attempt just recorded ended, for the metrics: a failure is retried if the policy allows another."""
        if step.status is StepStatus.SUCCEEDED:
            return "succeeded"
        return "retried" if policy.allows_another(self._history.failures_raised(step)) else "failed"

    async def _execute(
        self, step: StepState, function: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[StepState, float]:
        """Call the function for the step's open attempt and record its outcome; the step, and the function's run time.

        The outcome is written even when the drive was told to stop meanwhile: the lease's fencing
        token decides whether this engine may still write it.
        """
        self._signals.check()
        token = _ATTEMPT.set(step.attempt_count)
        started = time.monotonic()
        try:
            if inspect.iscoroutinefunction(function):
                result = await function(*args)
            else:
                result = await in_daemon_thread(function, *args)
        except Exception as error:
            seconds = time.monotonic() - started
            log.info("workflow %s run %s step %s attempt %d failed: %s",
                     self.workflow, self.run_id, step.step_name, step.attempt_count, error,
                     extra=about(self.workflow, self.run_id, step.step_name, step.attempt_count))  # fmt: skip
            return self._history.update(await self._writer.set_step_error(step.step_id, error)), seconds
        finally:
            _ATTEMPT.reset(token)
        seconds = time.monotonic() - started
        return self._history.update(await self._writer.set_step_result(step.step_id, result)), seconds

    # --- remote steps ----------------------------------------------------------------

    async def call(
        self,
        name: str,
        rpc_name: str,
        data: Any = None,
        *,
        retries: int | None = None,
        retry_delay: timedelta | None = None,
        backoff_coefficient: float | None = None,
        max_retry_delay: timedelta | None = None,
        jitter: float | None = None,
        start_to_close: timedelta | None = None,
        schedule_to_start: timedelta | None = None,
        priority: int | None = None,
        concurrency_key: str | None = None,
    ) -> Any:
        """Schedule step ``name`` for the Workers serving ``rpc_name`` (any language) with ``data`` and
        return its result once one of them succeeds.

        The retry and dispatch options are the server's (``insert_step_state``): the server
        retries a failed attempt while retries remain; a step failed for good raises StepFailed.
        """
        step = await self._open(name)
        if step is None:
            step = self._history.made(
                await self._writer.insert_step_state(
                    self.run_id, name, rpc_name, data, retries=retries, retry_delay=retry_delay,
                    backoff_coefficient=backoff_coefficient, max_retry_delay=max_retry_delay, jitter=jitter,
                    start_to_close=start_to_close, schedule_to_start=schedule_to_start, priority=priority,
                    concurrency_key=concurrency_key,
                )
            )  # fmt: skip
        waited = False  # an outcome found on replay was counted by the drive that waited for it
        while True:
            if step.status is StepStatus.SUCCEEDED:
                if waited:
                    self._metrics.call_answered(self.workflow, name, "succeeded")
                return step.result
            if step.status is StepStatus.FAILED:
                assert step.error is not None
                if waited:
                    self._metrics.call_answered(self.workflow, name, "failed")
                raise StepFailed(name, step.error)
            if step.status is StepStatus.PENDING:
                self._signals.check()
                step = self._history.update(await self._writer.set_step_scheduled(step.step_id))
                self._metrics.call_scheduled(self.workflow, name)
                continue
            step = await self._wait_for_change(step)
            waited = True

    async def _wait_for_change(self, step: StepState) -> StepState:
        """The step's record after the next change the engine hears of (or the next poll)."""
        changed = self._signals.changed
        current = await self._client.get_step_state(self.run_id, step.step_name)
        if current.status is step.status and current.attempt_count == step.attempt_count:
            await self._signals.wait(self._poll_interval, changed)
            current = await self._client.get_step_state(self.run_id, step.step_name)
        return self._history.update(current)

    # --- timers ----------------------------------------------------------------------

    async def sleep(self, delay: timedelta, *, name: str | None = None) -> None:
        """Wait ``delay``, durably: the wake-up time is recorded in the step, so the wait survives every engine."""
        await self._sleep(lambda: datetime.now(UTC) + delay, name)

    async def sleep_until(self, when: datetime, *, name: str | None = None) -> None:
        """Wait until ``when`` (timezone-aware), durably, as :meth:`sleep`."""
        if when.tzinfo is None:
            raise ValueError("sleep_until needs a timezone-aware datetime")
        await self._sleep(lambda: when, name)

    async def _sleep(self, wake_time: Callable[[], datetime], name: str | None) -> None:
        name = name or self._next_unnamed("sleep")
        step = await self._open(name)
        if step is None:
            data = {"wake_time": wake_time().astimezone(UTC).isoformat()}
            step = self._history.made(await self._writer.insert_step_state(self.run_id, name, None, data))
        if step.status is StepStatus.SUCCEEDED:
            return
        wake = datetime.fromisoformat(step.data["wake_time"]).timestamp()
        await self._signals.wait_until(wake)
        self._history.update(await self._writer.set_step_result(step.step_id, {"woke_time": datetime.now(UTC).isoformat()}))
        self._metrics.timer_due(self.workflow, "sleep")

    # --- recorded values -------------------------------------------------------------

    async def now(self, *, name: str | None = None) -> datetime:
        """The current time (UTC), recorded on first execution: a replay gets the same value."""
        return datetime.fromisoformat(await self._recorded(name or self._next_unnamed("now"), lambda: datetime.now(UTC).isoformat()))

    async def uuid(self, *, name: str | None = None) -> str:
        """A random UUID, recorded on first execution: a replay gets the same value."""
        value: str = await self._recorded(name or self._next_unnamed("uuid"), lambda: str(uuid.uuid4()))
        return value

    async def _recorded(self, name: str, make: Callable[[], Any]) -> Any:
        step = await self._open(name)
        if step is None:
            step = self._history.made(await self._writer.insert_step_state(self.run_id, name, None, None))
        if step.status is not StepStatus.SUCCEEDED:
            step = self._history.update(await self._writer.set_step_result(step.step_id, make()))
        return step.result

    # --- child runs ------------------------------------------------------------------

    async def child(self, name: str, workflow: str, input: Any = None, *, version: str = "") -> Any:
        """Start a run of ``workflow`` (``version``) as step ``name``'s child and return its output once it completes.

        The child is created once (its request id is the parent's run and step), linked with
        ``set_step_child_run``, and driven by any engine that has its workflow. A child that
        fails or is cancelled raises StepFailed.
        """
        step = await self._open(name)
        if step is None:
            step = self._history.made(await self._writer.insert_step_state(self.run_id, name, None, {"workflow": workflow}))
        if step.status is StepStatus.SUCCEEDED:
            return step.result
        if step.status is StepStatus.FAILED:
            assert step.error is not None
            raise StepFailed(name, step.error)
        child_id = step.child_run_id
        if child_id is None:
            self._signals.check()
            created = await self._client.create_run(workflow, input, request_id=f"{self.run_id}:{name}", graph_hash=version)
            step = self._history.update(await self._writer.set_step_child_run(step.step_id, created.run_id))
            child_id = created.run_id
        self._watch_child(child_id)
        while True:
            changed = self._signals.changed
            child = await self._client.get_run(child_id)
            if child is None:
                failure = Failure(f"child run {child_id} of step {name!r} was deleted", code="ChildRunDeleted")
                break
            if child.status is RunStatus.COMPLETED:
                self._history.update(await self._writer.set_step_result(step.step_id, child.output))
                return child.output
            if child.status in _FINISHED_RUN:
                message = child.error.message if child.error else "no error recorded"
                failure = Failure(f"child run {child_id} ended {child.status.value}: {message}", code=f"Child{child.status.name.title()}")
                break
            await self._signals.wait(self._poll_interval, changed)
        self._history.update(await self._writer.set_step_error(step.step_id, failure))
        raise StepFailed(name, failure)

    # --- replay ----------------------------------------------------------------------

    def _next_unnamed(self, kind: str) -> str:
        self._unnamed[kind] = self._unnamed.get(kind, 0) + 1
        return f"{kind}-{self._unnamed[kind]}"

    async def _open(self, name: str) -> StepState | None:
        """The step's record, or ``None`` for a step new to the run (after checking the code did not change)."""
        self._signals.check()
        step = self._history.reach(name)
        if step is not None:
            return step
        # Let the other branches of the replay catch up on their recorded steps first.
        seen, still = -1, 0
        for _ in range(MAX_SETTLE_TURNS):
            if self._history.first_unreached() is None or still >= SETTLED_TURNS:
                break
            reached = self._history.reached_count
            still = still + 1 if reached == seen else 0
            seen = reached
            await asyncio.sleep(0)
        recorded = self._history.first_unreached()
        if recorded is not None:
            # Kept as well as raised: the workflow may catch it, the drive fails the run anyway.
            self.nondeterminism = NonDeterminismError(name, recorded)
            raise self.nondeterminism
        self._signals.check()
        return None
