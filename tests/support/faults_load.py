"""Client threads doing step lifecycles against several servers, counting what each server acknowledged.

A lifecycle is create_run, insert_step_state, set_step_scheduled, set_step_running,
set_step_result, update_run_status(COMPLETED), each call through the next server in turn. A call
that fails ends its lifecycle (the thread starts a new one); the write it carried may or may not
have been applied (a server killed mid-call cannot say), so afterwards each step must be exactly
where its last acknowledged write left it, or one write further when a call was cut off.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field

import grpc
import psycopg

from workflowstate.client import RunStatus, WorkflowStateClient, WorkflowStateError

STEP_LIFECYCLE = ("pending", "scheduled", "running", "succeeded")


@dataclass
class Lifecycle:
    """What the servers acknowledged of one lifecycle."""

    run_id: str
    step_id: str | None = None
    step_status: str | None = None
    """The step's status after the last acknowledged step write."""
    run_completed: bool = False
    cut_off: bool = False
    """A call of it failed: the write it carried may have been applied."""


@dataclass
class LifecycleLoad:
    """``threads`` threads doing lifecycles through ``clients`` in turn, until :meth:`stop`."""

    clients: dict[str, WorkflowStateClient]
    workflow: str
    rpc_name: str
    threads: int = 4
    lifecycles: list[Lifecycle] = field(default_factory=list)
    errors: Counter[grpc.StatusCode] = field(default_factory=Counter)
    unexpected: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._serving = list(self.clients)
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._turn = itertools.count()
        self._workers = [threading.Thread(target=self._loop, name=f"load-{i}") for i in range(self.threads)]

    def start(self) -> LifecycleLoad:
        for thread in self._workers:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout)
        assert not any(thread.is_alive() for thread in self._workers), "a load thread did not stop"

    def forget(self, name: str) -> None:
        """Stop sending calls to the server ``name`` (calls already sent end as they end)."""
        with self._lock:
            self._serving.remove(name)

    def completed(self) -> int:
        with self._lock:
            return self._completed_locked()

    def wait_completed(self, count: int, timeout: float) -> None:
        """Return once ``count`` lifecycles were acknowledged to the end, bounded by ``timeout``."""
        with self._lock:
            done = self._lock.wait_for(lambda: self.unexpected or self._completed_locked() >= count, timeout)
        assert not self.unexpected, self.unexpected
        assert done, f"only {self.completed()} of {count} lifecycles completed within {timeout}s"

    def _completed_locked(self) -> int:
        return sum(1 for lifecycle in self.lifecycles if lifecycle.run_completed)

    def _client(self) -> WorkflowStateClient:
        with self._lock:
            return self.clients[self._serving[next(self._turn) % len(self._serving)]]

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._one_lifecycle()
        except BaseException as exc:  # reported by wait_completed and the checks
            with self._lock:
                self.unexpected.append(exc)
                self._lock.notify_all()

    def _one_lifecycle(self) -> None:
        try:
            run = self._client().create_run(self.workflow, {"load": True})
        except WorkflowStateError as err:
            self._failed(err)
            return
        lifecycle = Lifecycle(run.run_id)
        with self._lock:
            self.lifecycles.append(lifecycle)
        try:
            step = self._client().insert_step_state(run.run_id, "step", self.rpc_name, {"n": 1})
            lifecycle.step_id, lifecycle.step_status = step.step_id, "pending"
            self._client().set_step_scheduled(step.step_id)
            lifecycle.step_status = "scheduled"
            self._client().set_step_running(step.step_id)
            lifecycle.step_status = "running"
            self._client().set_step_result(step.step_id, {"done": True})
            lifecycle.step_status = "succeeded"
            self._client().update_run_status(run.run_id, RunStatus.COMPLETED, output={"done": True})
            with self._lock:
                lifecycle.run_completed = True
                self._lock.notify_all()
        except WorkflowStateError as err:
            lifecycle.cut_off = True
            self._failed(err)

    def _failed(self, err: WorkflowStateError) -> None:
        with self._lock:
            self.errors[err.status] += 1


def acknowledged_state_problems(db: psycopg.Connection, schema: str, lifecycles: list[Lifecycle]) -> list[str]:
    """Every acknowledged write missing from PostgreSQL, and every write applied twice; empty when none."""
    problems = []
    runs = dict(
        db.execute(
            f"SELECT run_id::text, status FROM {schema}.runs WHERE run_id = ANY(%s::uuid[])", ([lc.run_id for lc in lifecycles],)
        ).fetchall()
    )
    step_ids = [lc.step_id for lc in lifecycles if lc.step_id]
    steps = dict(
        db.execute(f"SELECT step_id::text, status FROM {schema}.steps WHERE step_id = ANY(%s::uuid[])", (step_ids,)).fetchall()
    )
    attempts = Counter(
        dict(
            db.execute(
                f"SELECT step_id::text, count(*) FROM {schema}.step_attempts WHERE step_id = ANY(%s::uuid[]) GROUP BY 1",
                (step_ids,),
            ).fetchall()
        )
    )
    for lc in lifecycles:
        run_status = runs.get(lc.run_id)
        allowed_runs = {"completed"} if lc.run_completed else {"running", "completed"} if lc.cut_off else {"running"}
        if run_status not in allowed_runs:
            problems.append(f"run {lc.run_id}: {run_status}, acknowledged {'completed' if lc.run_completed else 'running'}")
        if lc.step_id is None or lc.step_status is None:
            continue
        acknowledged = STEP_LIFECYCLE.index(lc.step_status)
        allowed = STEP_LIFECYCLE[acknowledged : acknowledged + (2 if lc.cut_off else 1)]
        if steps.get(lc.step_id) not in allowed:
            problems.append(f"step {lc.step_id}: {steps.get(lc.step_id)}, acknowledged {lc.step_status}")
        if attempts[lc.step_id] != 1:
            problems.append(f"step {lc.step_id}: {attempts[lc.step_id]} attempts, not 1")
    return problems
