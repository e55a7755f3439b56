"""``WorkflowEngine``: drives the runs of its workflows, any of them, each under the run's lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from workflowstate.client import AsyncWorkflowStateClient, RunEvent, RunStatus, StepStatus, WorkflowStateError
from workflowstate.client._identity import host_and_pid
from workflowstate.client._signals import signals_to_loop

from ._definition import Registry, Workflow
from ._drive import DriveSettings, drive
from ._errors import WorkflowFailed
from ._log_fields import about
from ._metrics import NO_METRICS, EngineMetrics, TakenBy
from ._signals import RunSignals

log = logging.getLogger("workflowstate.workflows")

EVENT_LOOKBACK = timedelta(seconds=30)
"""Events this much older than the engine's start are still acted on: a run created just before it."""

MAX_FOREIGN_REMEMBERED = 100_000
"""Stalled runs of other workflows the scan remembers, so it reads each only once."""

_FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
_OUTCOMES = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED})


class WorkflowEngine:
    """Drives the runs of ``workflows`` on a workflowstate server, with the asyncio client::

        engine = WorkflowEngine(client, [fulfil])
        runner = asyncio.create_task(engine.run())
        run_id = await engine.start(fulfil, {"order": 42}, request_id="order-42")
        print(await engine.result(run_id, timeout=timedelta(minutes=1)))

    Nothing is kept only in memory: any engine process with the same workflows resumes any run.
    A run is driven by one engine at a time, holding the run's lease (``ttl`` ``lease_ttl``);
    every write carries the lease's fencing token. An engine wakes a run:

    - at once, on its run events (``stream_run_events`` of each workflow): a run created, a remote
      step's outcome, a child run's end;
    - when a timer (a sleep, a retry delay) falls due, from the drive that holds the run;
    - for a run whose engine died, by the stalled-run scan every ``scan_interval``: runs nothing
      moved for ``stalled_after`` (``list_stalled_runs``), taken over once their lease expired.
      So a dead engine's run goes on within ``max(lease_ttl, stalled_after) + scan_interval``
      of its engine's death (or of its next timer, if later);
    - a remote step or child waiting for an event it missed reads its state every ``poll_interval``.

    ``metrics`` is told what the engine does (:class:`EngineMetrics`; by default nothing counts it).
    """

    def __init__(
        self,
        client: AsyncWorkflowStateClient,
        workflows: Iterable[Workflow],
        *,
        lease_ttl: timedelta = timedelta(seconds=10),
        stalled_after: timedelta = timedelta(seconds=15),
        scan_interval: timedelta = timedelta(seconds=5),
        poll_interval: timedelta = timedelta(seconds=5),
        max_stalled_per_scan: int = 1000,
        engine_id: str | None = None,
        metrics: EngineMetrics = NO_METRICS,
    ) -> None:
        self._client = client
        self._registry = Registry(workflows)
        self.engine_id = engine_id or host_and_pid()
        """The name this engine holds run leases under."""
        self._settings = DriveSettings(self.engine_id, lease_ttl, poll_interval.total_seconds(), metrics)
        self._stalled_after = stalled_after
        self._scan_interval = scan_interval.total_seconds()
        self._max_stalled = max_stalled_per_scan
        self._signals: dict[str, RunSignals] = {}
        self._parents: dict[str, set[str]] = {}
        self._driving: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._foreign: set[str] = set()
        self._since = datetime.now(UTC)
        self._running = False
        self._draining = asyncio.Event()
        self._abandoned = False
        self.stopping = asyncio.Event()
        """Set once :meth:`stop` was called (or a stop signal received)."""

    # --- for callers -----------------------------------------------------------------

    async def start(self, workflow: Workflow | str, input: Any = None, *, request_id: str | None = None) -> str:
        """Create a run of ``workflow`` with ``input`` and return its id; this engine drives it at once if running.

        ``request_id`` makes the start idempotent: the same id returns the run it created first.
        """
        chosen = self._workflow(workflow)
        run = await self._client.create_run(chosen.name, input, request_id=request_id, graph_hash=chosen.version)
        run_id: str = run.run_id
        if self._running:
            self._try_drive(run_id, chosen.name, "started")
        return run_id

    async def result(self, run_id: str, *, timeout: timedelta | None = None) -> Any:
        """Wait for the run to finish and return its output; WorkflowFailed when it failed or was cancelled,
        TimeoutError after ``timeout``, LookupError for an unknown run."""
        async with asyncio.timeout(None if timeout is None else timeout.total_seconds()):
            run = await self._client.get_run(run_id)
            if run is not None and run.status not in _FINISHED:
                async for event in self._client.watch_run(run_id):
                    if event.finishes_run:
                        break
                run = await self._client.get_run(run_id)
        if run is None:
            raise LookupError(f"no run {run_id}")
        if run.status is RunStatus.COMPLETED:
            return run.output
        raise WorkflowFailed(run_id, run.status, run.error)

    async def run(self) -> None:
        """Drive runs until :meth:`stop`; in the main thread SIGINT and SIGTERM stop it as they stop a Worker.

        Stopping drains: no new run is taken, each drive stops at its next wait (its running step
        functions finish and record their outcome first), and every lease is released, so other
        engines take the runs over at once. A second signal cancels the drives and returns.
        """
        if self._running:
            raise RuntimeError("a WorkflowEngine runs once")
        self._running = True
        self._since = datetime.now(UTC) - EVENT_LOOKBACK
        with signals_to_loop(f"workflow engine {self.engine_id}", self.stopping.is_set, self.stop, self._abandon):
            background = [asyncio.create_task(self._follow(name), name=f"engine-events {name}") for name in self._registry.names]
            background.append(asyncio.create_task(self._scan(), name="engine-stalled-scan"))
            log.info("workflow engine %s driving %s", self.engine_id, ", ".join(sorted(self._registry.names)))
            try:
                await self.stopping.wait()
            finally:
                for task in background:
                    task.cancel()
                self._draining.set()
                if self._tasks:
                    await asyncio.wait(set(self._tasks))
                log.info("workflow engine %s stopped", self.engine_id)

    def stop(self) -> None:
        """Ask :meth:`run` to drain and return."""
        self.stopping.set()

    def _abandon(self) -> None:
        self._abandoned = True
        self.stopping.set()
        for task in self._tasks:
            task.cancel()

    # --- taking runs -----------------------------------------------------------------

    def _workflow(self, workflow: Workflow | str) -> Workflow:
        if isinstance(workflow, Workflow):
            return workflow
        versions = [each for name, each in self._registry.items() if name == workflow]
        if len(versions) != 1:
            raise ValueError(f"workflow {workflow!r} has {len(versions)} versions in this engine; pass the Workflow itself")
        return versions[0]

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _try_drive(self, run_id: str, workflow: str, taken_by: TakenBy) -> None:
        """Drive the run in a task of its own unless this engine drives it already or stops."""
        if run_id in self._driving or self.stopping.is_set():
            return
        self._driving.add(run_id)
        self._spawn(self._drive(run_id, workflow, taken_by), f"drive {run_id}")

    async def _drive(self, run_id: str, workflow: str, taken_by: TakenBy) -> None:
        try:
            await drive(self._client, self._registry, run_id, self._settings, self._draining, self._register, taken_by)
        except WorkflowStateError as error:
            log.warning("workflow %s run %s: not driven now: %s", workflow, run_id, error, extra=about(workflow, run_id))
        except Exception:
            log.exception("workflow %s run %s: the drive failed unexpectedly", workflow, run_id, extra=about(workflow, run_id))
        finally:
            self._driving.discard(run_id)

    @contextlib.contextmanager
    def _register(self, run_id: str, signals: RunSignals) -> Iterator[Callable[[str], None]]:
        """Deliver the run's events (and its children's) to ``signals`` while the drive runs."""
        self._signals[run_id] = signals
        children: list[str] = []

        def watch_child(child_id: str) -> None:
            self._parents.setdefault(child_id, set()).add(run_id)
            children.append(child_id)

        try:
            yield watch_child
        finally:
            del self._signals[run_id]
            for child_id in children:
                parents = self._parents.get(child_id, set())
                parents.discard(run_id)
                if not parents:
                    self._parents.pop(child_id, None)

    # --- waking runs -----------------------------------------------------------------

    async def _follow(self, workflow: str) -> None:
        """Act on every event of the workflow's runs, for as long as the engine runs."""
        while True:
            try:
                async for event in self._client.stream_run_events(workflow=workflow, reconnect_timeout=None):
                    if event.event_time >= self._since:
                        self._on_event(event)
            except WorkflowStateError as error:
                log.warning("engine %s: events of workflow %s: %s; following again", self.engine_id, workflow, error,
                            extra={"workflow": workflow})  # fmt: skip
                await asyncio.sleep(self._scan_interval)

    def _on_event(self, event: RunEvent) -> None:
        signals = self._signals.get(event.run_id)
        if signals is not None:
            if event.finishes_run:
                signals.run_finished()  # cancelled while it waits: the drive ends and releases the lease now
            else:
                signals.notify()
        for parent in self._parents.get(event.run_id, ()):
            self._signals[parent].notify()
        if signals is not None or event.run_id in self._driving:
            return
        if event.run_status is RunStatus.RUNNING and event.step is None:
            self._try_drive(event.run_id, event.workflow, "created")  # whichever engine gets its lease first drives it
        elif event.step is not None and event.step.status in _OUTCOMES:
            # A remote step's outcome: its run goes on now, if its engine is gone.
            self._spawn(self._drive_if_free(event.run_id, event.workflow), f"adopt {event.run_id}")

    async def _drive_if_free(self, run_id: str, workflow: str) -> None:
        try:
            held = await self._client.get_lease(f"run:{run_id}")
        except WorkflowStateError as error:
            log.debug("workflow %s run %s: lease not read: %s", workflow, run_id, error, extra=about(workflow, run_id))
            return
        if held is None:
            self._try_drive(run_id, workflow, "step_outcome")

    async def _scan(self) -> None:
        """Every scan_interval, take the stalled runs of this engine's workflows whose lease is free."""
        while True:
            try:
                stalled = await self._client.list_stalled_runs(datetime.now(UTC) - self._stalled_after, self._max_stalled)
            except WorkflowStateError as error:
                log.warning("engine %s: stalled runs not read: %s", self.engine_id, error)
                stalled = []
            for run_id in stalled:
                if run_id not in self._driving and run_id not in self._foreign:
                    self._spawn(self._adopt_stalled(run_id), f"adopt {run_id}")
            await asyncio.sleep(self._scan_interval)

    async def _adopt_stalled(self, run_id: str) -> None:
        try:
            run = await self._client.get_run(run_id)
        except WorkflowStateError as error:
            # Its workflow is not known yet: the scan lists run ids only.
            log.debug("stalled run %s: not read: %s", run_id, error, extra={"run_id": run_id})
            return
        if run is None or run.workflow not in self._registry.names:
            if len(self._foreign) >= MAX_FOREIGN_REMEMBERED:
                self._foreign.clear()  # read again, once each: a bounded memory
            self._foreign.add(run_id)  # another engine's kind (Pikku's, say): never ours
            return
        log.debug("workflow %s run %s: stalled; taking it over if its lease is free", run.workflow, run_id, extra=about(run.workflow, run_id))
        self._try_drive(run_id, run.workflow, "stalled_scan")
