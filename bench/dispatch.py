"""Remote mode: steps dispatched to workers and completed, per second, from a backlog of due steps.

Each of the 4 workers keeps one StreamStepTasks stream with max_in_flight 1, so a unit of the
closed loop is exactly one step: the task arrives (claimed for this worker in one statement),
the worker completes it, the server accepts it (one statement), the worker gives its credit back.
The raw generated stub is driven directly, as in leases.py.

The bulk figure runs the same 4 workers with max_in_flight 16, subscribed with bulk: a round is the
tasks of one claim in one message, their completes in one updates message, one outcomes message
answering them, one credit for them all; the figure counts steps, its latency is a round's. The backlog is written straight into
the tables beforehand, large enough for the whole window, so the figure is dispatch + completion
alone; the SQL limit runs the same two statements (sql/limit_dispatch.sql) on the same backlog.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import timedelta

import grpc
import grpc.aio
import psycopg
from psycopg import sql

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

from . import payloads, streams
from .loop import Unit, closed_loop
from .stats import Tally

WORKERS = 4
BULK_IN_FLIGHT = 16
# Steps per second the backlog is sized for: well above what this box does, so it never runs dry.
BACKLOG_RATE = 6000


def backlog_size(warmup: float, seconds: float) -> int:
    return math.ceil((warmup + seconds + 3) * BACKLOG_RATE)


@dataclass(frozen=True)
class Policies:
    """Dispatch policies on every step of a backlog, and the rpc name's defaults."""

    keys: int
    """Concurrency keys, given round-robin."""

    concurrency_limit: int
    """Attempts of one key that may run at once."""

    rate_limit: int | None = None
    """Claims per second, None for no rate limit."""


# Every policy present, none holding a step back: 64 keys of at most 1000 each (4 workers run 4
# at once), a million claims per second, timeouts far away, priorities 0 to 2, backoff options.
NOT_LIMITING = Policies(keys=64, concurrency_limit=1000, rate_limit=1_000_000)
# Concurrency keys limiting: 4 keys of 1 for the 4 workers, given round-robin, so every key is at
# its limit and each claim passes over the due steps of the three keys held by the other workers.
# (Fewer keys than workers would leave a worker without work: the one whose attempt just freed a
# key claims again before the others hear of it, and the loop's window never opens.)
KEYS_LIMITING = Policies(keys=4, concurrency_limit=1)


async def fill_backlog(database_url: str, schema: str, count: int, *, server_tables: bool, policies: Policies | None = None) -> None:
    """One run with `count` steps of payloads.RPC_NAME, scheduled and due now (the server's tables
    also keep each attempt's run_id and step_name). With `policies` (server tables only) each step
    has a priority, a concurrency key, both timeouts and backoff options, and the rpc name has
    defaults with the limits."""
    attempts = (
        "INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status) "
        "SELECT step_id, 1, run_id, step_name, 'scheduled' FROM new_steps"
        if server_tables
        else "INSERT INTO {schema}.step_attempts (step_id, attempt, status) SELECT step_id, 1, 'scheduled' FROM new_steps"
    )
    statement = (
        "WITH new_run AS ("
        "  INSERT INTO {schema}.runs (run_id, workflow, status, input) VALUES (gen_random_uuid(), %(workflow)s, 'running', '{{}}')"
        "  RETURNING run_id"
        "), new_steps AS ("
        "  INSERT INTO {schema}.steps (step_id, run_id, step_name, rpc_name, data, status, not_before)"
        "  SELECT gen_random_uuid(), new_run.run_id, 'step-' || n, %(rpc_name)s, %(data)s::jsonb, 'scheduled', now()"
        "  FROM new_run, generate_series(1, %(count)s) AS n"
        "  RETURNING step_id, run_id, step_name"
        ") " + attempts
    )
    if policies is not None:
        statement = statement.replace(
            "status, not_before)", "status, not_before, priority, concurrency_key, start_to_close, schedule_to_start,"
            " start_timeout_time, retries, retry_delay, backoff_coefficient, max_retry_delay, jitter)"
        ).replace(
            "'scheduled', now()", "'scheduled', now(), n %% 3, 'key-' || (n %% %(keys)s), interval '10 minutes', interval '1 hour',"
            " now() + interval '1 hour', 3, interval '1 second', 2, interval '1 minute', 0.1"
        )  # fmt: skip
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            sql.SQL(statement).format(schema=sql.Identifier(schema)),
            {"workflow": payloads.WORKFLOW, "rpc_name": payloads.RPC_NAME, "data": payloads.as_json(payloads.STEP_DATA), "count": count,
             "keys": policies.keys if policies else 1},
        )  # fmt: skip
        if policies is not None:
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {}.dispatch_defaults (rpc_name, concurrency_limit, rate_limit, rate_period) VALUES (%s, %s, %s, %s)"
                ).format(sql.Identifier(schema)),
                (payloads.RPC_NAME, policies.concurrency_limit, policies.rate_limit,
                 timedelta(seconds=1) if policies.rate_limit else None),
            )  # fmt: skip
        # Statistics as autovacuum would soon have them, so the planner sees the backlog.
        for table in ("runs", "steps", "step_attempts"):
            await conn.execute(sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


async def clear_backlog(database_url: str, schema: str) -> None:
    """Erase what a figure left of its backlog (and its defaults), then vacuum, so the next
    figure's claims neither scan past it (the steps' index is ordered by priority and due time,
    not by rpc name) nor share the machine with autovacuum cleaning up after it."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for statement in (
            "DELETE FROM {schema}.runs WHERE run_id IN (SELECT DISTINCT run_id FROM {schema}.steps WHERE rpc_name = %(rpc_name)s)",
            "DELETE FROM {schema}.dispatch_defaults WHERE rpc_name = %(rpc_name)s",
            "VACUUM (ANALYZE) {schema}.runs, {schema}.steps, {schema}.step_attempts, {schema}.run_events",
        ):
            await conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)), {"rpc_name": payloads.RPC_NAME})


class DispatchWorker:
    """One worker's stream: take a task, complete it, give the credit back."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceAsyncStub, index: int) -> None:
        self._call = stub.StreamStepTasks()
        self._subscribe = pb.StreamStepTasksRequest(
            subscribe=pb.StepTaskSubscribe(worker_id=f"bench-{index}", rpc_names=[payloads.RPC_NAME], max_in_flight=1)
        )
        self._credit = pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=1))
        self._result = payloads.as_json(payloads.STEP_RESULT)

    async def start(self) -> None:
        await self._call.write(self._subscribe)
        await streams.expect(self._call, "subscribed")

    async def one_step(self) -> None:
        task = (await streams.expect(self._call, "task")).task
        complete = pb.StepTaskComplete(step_id=task.step_id, attempt=task.attempt, result_json=self._result)
        await self._call.write(pb.StreamStepTasksRequest(complete=complete))
        await streams.expect(self._call, "accepted")
        await self._call.write(self._credit)

    async def close(self) -> None:
        await streams.close(self._call)


class BulkDispatchWorker(DispatchWorker):
    """One bulk worker's stream: take a message of tasks, complete them in one message, credit them."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceAsyncStub, index: int) -> None:
        super().__init__(stub, index)
        self._subscribe.subscribe.max_in_flight = BULK_IN_FLIGHT
        self._subscribe.subscribe.bulk = True

    async def one_round(self) -> int:
        tasks = (await streams.expect(self._call, "tasks")).tasks.tasks
        updates = [
            pb.StepTaskUpdate(complete=pb.StepTaskComplete(step_id=task.step_id, attempt=task.attempt, result_json=self._result))
            for task in tasks
        ]
        await self._call.write(pb.StreamStepTasksRequest(updates=pb.StepTaskUpdates(updates=updates)))
        outcomes = (await streams.expect(self._call, "outcomes")).outcomes.outcomes
        accepted = sum(1 for outcome in outcomes if outcome.HasField("accepted"))
        if accepted != len(tasks):
            raise RuntimeError(f"{len(tasks) - accepted} of {len(tasks)} completes were refused")
        await self._call.write(pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=len(tasks))))
        return len(tasks)


async def measure(target: str, *, warmup: float, seconds: float, bulk: bool = False) -> Tally:
    """Run WORKERS workers over the server's backlog; a unit is one step dispatched and completed
    (with ``bulk``, a round of up to BULK_IN_FLIGHT steps, counted as its steps)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        if bulk:
            bulk_workers = [BulkDispatchWorker(stub, index) for index in range(WORKERS)]
            workers: list[DispatchWorker] = list(bulk_workers)
            units: list[Unit] = [worker.one_round for worker in bulk_workers]
        else:
            workers = [DispatchWorker(stub, index) for index in range(WORKERS)]
            units = [worker.one_step for worker in workers]
        try:
            await asyncio.gather(*(worker.start() for worker in workers))
            return await closed_loop(units, warmup=warmup, seconds=seconds)
        finally:
            await asyncio.gather(*(worker.close() for worker in workers))
