"""Writer threads of the fault tests: step lifecycles, each under its own marker, every call journaled.

Each writer runs step lifecycles through the Python client (create run, insert step, running,
result, and with RUN_LIFECYCLE the run completed), each lifecycle under its own marker (the run's
request_id and input, the step's data and result, the run's output), with gRPC retries off so that
every answer belongs to exactly one attempt. Afterwards,
broken_promises() reads PostgreSQL: every acknowledged write must be there, and no write answered
with an error may be, but for an UNAVAILABLE answer whose outcome is unknown (a statement in flight
when its connection died: PostgreSQL may have committed it just before), which allows either state.
Answers are told apart by their reason and its metadata, never by their message.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import psycopg
from psycopg import sql

from workflowstate.client import RunStatus, WorkflowStateClient, WorkflowStateError

WRITERS = 8

OPS = ("create_run", "insert_step", "set_running", "set_result")
# The lifecycle that also completes its run: every kind of write a workflow makes.
RUN_LIFECYCLE = (*OPS, "complete_run")
# What the database holds for a lifecycle after each of its steps.
STATE_AFTER = {
    None: "no run",
    "create_run": "no step",
    "insert_step": "pending",
    "set_running": "running",
    "set_result": "succeeded",
    "complete_run": "completed",
}
# The `outcome` an UNAVAILABLE answer's metadata names (README, Errors): nothing was written, or the
# statement was in flight when its connection died and may have committed.
NOTHING_WRITTEN, OUTCOME_UNKNOWN = "nothing_written", "unknown"


@dataclass
class Call:
    op: str
    started: float
    ended: float
    code: grpc.StatusCode
    message: str
    reason: str = ""
    outcome: str = ""  # the `outcome` of the answer's metadata, if it names one

    @property
    def outcome_unknown(self) -> bool:
        return self.outcome == OUTCOME_UNKNOWN


def untrue_errors(calls: Sequence[Call]) -> list[Call]:
    """The error answers that neither say nothing was written nor that their outcome is unknown."""
    said = {("UNAVAILABLE", NOTHING_WRITTEN), ("UNAVAILABLE", OUTCOME_UNKNOWN)}
    return [call for call in calls if call.code != grpc.StatusCode.OK and (call.reason, call.outcome) not in said]


@dataclass
class Lifecycle:
    marker: str
    started: float
    acknowledged: list[str] = field(default_factory=list)
    failed: str | None = None  # the op answered with an error (the lifecycle stops there)
    outcome_unknown: bool = False

    def allowed_states(self) -> set[str]:
        last = self.acknowledged[-1] if self.acknowledged else None
        states = {STATE_AFTER[last]}
        if self.failed and self.outcome_unknown:
            states.add(STATE_AFTER[self.failed])
        return states


class Writers:
    """`count` threads running lifecycles of `ops` until stopped, journaling every call and lifecycle."""

    def __init__(self, target: str, *, count: int = WRITERS, ops: Sequence[str] = OPS) -> None:
        self.calls: list[Call] = []
        self.lifecycles: list[Lifecycle] = []
        self._ops = tuple(ops)
        self._stop = threading.Event()
        self._clients = [WorkflowStateClient(target, retry=False, timeout=timedelta(seconds=15)) for _ in range(count)]
        self._pool = ThreadPoolExecutor(count)
        self._running = [self._pool.submit(self._write, client) for client in self._clients]

    def _write(self, client: WorkflowStateClient) -> None:
        while not self._stop.is_set():
            life = Lifecycle(f"writer-{uuid.uuid4().hex}", time.monotonic())
            self.lifecycles.append(life)
            ids: dict[str, str] = {}
            for op in self._ops:
                started = time.monotonic()
                try:
                    self._step(client, op, life.marker, ids)
                except WorkflowStateError as err:
                    call = Call(op, started, time.monotonic(), err.status, err.message, err.reason or "", err.metadata.get("outcome", ""))
                    self.calls.append(call)
                    life.failed, life.outcome_unknown = op, call.outcome_unknown
                    self._stop.wait(0.05)  # pace the writers while the database is away
                    break
                self.calls.append(Call(op, started, time.monotonic(), grpc.StatusCode.OK, ""))
                life.acknowledged.append(op)

    @staticmethod
    def _step(client: WorkflowStateClient, op: str, marker: str, ids: dict[str, str]) -> None:
        if op == "create_run":
            ids["run"] = client.create_run("faults-writer", {"marker": marker}, request_id=marker).run_id
        elif op == "insert_step":
            ids["step"] = client.insert_step_state(ids["run"], "step", "doWork", {"marker": marker}).step_id
        elif op == "set_running":
            client.set_step_running(ids["step"])
        elif op == "set_result":
            client.set_step_result(ids["step"], {"marker": marker})
        else:
            client.update_run_status(ids["run"], RunStatus.COMPLETED, output={"marker": marker})

    def completed_since(self, moment: float) -> int:
        """Lifecycles started after `moment` and acknowledged to the end."""
        return sum(1 for life in self.lifecycles if life.started > moment and len(life.acknowledged) == len(self._ops))

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        ends = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < ends, f"timed out waiting for {what}"
            for running in self._running:
                if running.done():
                    running.result()  # a writer died: raise its error
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        for running in self._running:
            running.result(timeout=60)
        self._pool.shutdown()
        for client in self._clients:
            client.close()


def journal(calls: list[Call], lifecycles: list[Lifecycle]) -> dict[str, Any]:
    """Calls and lifecycles as JSON, for a writer process to hand them to the test."""
    return {
        "calls": [{**dataclasses.asdict(call), "code": call.code.name} for call in calls],
        "lifecycles": [dataclasses.asdict(life) for life in lifecycles],
    }


def from_journal(data: dict[str, Any]) -> tuple[list[Call], list[Lifecycle]]:
    """The calls and lifecycles of journal()."""
    calls = [Call(**{**call, "code": grpc.StatusCode[call["code"]]}) for call in data["calls"]]
    return calls, [Lifecycle(**life) for life in data["lifecycles"]]


def _states(conn: psycopg.Connection, schema: str, lifecycles: list[Lifecycle]) -> dict[str, tuple[str, Any]]:
    """Per marker: the lifecycle's state as the database holds it, and the step's result."""
    markers = [life.marker for life in lifecycles]
    query = sql.SQL(
        """SELECT r.request_id, r.input, r.status, r.output, s.step_id, s.status, s.data, s.result,
                  (SELECT array_agg(a.status) FROM {attempts} a WHERE a.step_id = s.step_id) AS history
           FROM {runs} r LEFT JOIN {steps} s USING (run_id) WHERE r.request_id = ANY(%s)"""
    ).format(runs=sql.Identifier(schema, "runs"), steps=sql.Identifier(schema, "steps"), attempts=sql.Identifier(schema, "step_attempts"))
    states: dict[str, tuple[str, Any]] = {}
    for request_id, input_, run_status, output, step_id, status, data, result, history in conn.execute(query, (markers,)):
        assert request_id not in states, f"{request_id} written twice"
        assert input_ == {"marker": request_id}
        if step_id is not None:
            assert data == {"marker": request_id}
            assert history == [status], f"history {history} disagrees with the step's status {status}"
        if run_status != "running":
            # Only a lifecycle's last write completes its run, after its step succeeded.
            completed = run_status == "completed" and status == "succeeded" and output == {"marker": request_id}
            states[request_id] = ("completed" if completed else f"run {run_status} (output {output}), step {status}", result)
        elif step_id is None:
            states[request_id] = ("no step", None)
        else:
            states[request_id] = (status, result)
    return states


def broken_promises(conn: psycopg.Connection, schema: str, lifecycles: list[Lifecycle]) -> list[str]:
    """Every lifecycle the database holds in a state its answers do not allow; empty when none."""
    states = _states(conn, schema, lifecycles)
    problems = []
    for life in lifecycles:
        state, result = states.get(life.marker, ("no run", None))
        if state not in life.allowed_states():
            problems.append(f"{life}: the database holds {state}")
        elif state in ("succeeded", "completed") and result != {"marker": life.marker}:
            problems.append(f"{life}: result {result}")
    return problems


def unknown_outcomes_applied(conn: psycopg.Connection, schema: str, lifecycles: list[Lifecycle]) -> int:
    """The writes answered with an unknown outcome that the database holds all the same (committed
    before the connection died)."""
    states = _states(conn, schema, lifecycles)
    return sum(
        1
        for life in lifecycles
        if life.failed and life.outcome_unknown and states.get(life.marker, ("no run", None))[0] == STATE_AFTER[life.failed]
    )
