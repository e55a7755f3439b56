"""The set-based step move (state.sql set_step_status) run as one statement on a group of inputs:
one row per input that is not locked elsewhere, carrying its ordinal and its own outcome, whatever
the other inputs' outcomes; an input whose step another transaction holds gets no row in the group
and is run alone, waiting for the lock, by the store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from support.waiting import wait_in_database

from workflowstate.server.db.coalescer import ignore_group
from workflowstate.server.db.database import Database
from workflowstate.server.db.params import array_params
from workflowstate.server.db.statements import load_statements, with_schema
from workflowstate.server.state.set_inputs import SetStepStatusInput
from workflowstate.server.state.store import StateStore
from workflowstate.server.state.transitions import StepStatus, Via, step_sources

S = StepStatus

# A backend waits for a lock the given backend holds.
SOMEONE_WAITS_FOR = "EXISTS (SELECT FROM pg_stat_activity WHERE {} = ANY(pg_blocking_pids(pid)))"

# A statement that outlasts this waits for a lock it should have skipped: an error, not a hang.
STATEMENT_TIMEOUT_MS = 5000


def move(step_id: uuid.UUID, target: StepStatus) -> SetStepStatusInput:
    """A set-status call's input: to target, from the statuses the transition table allows."""
    return SetStepStatusInput(step_id=step_id, to_status=target.value, from_statuses=step_sources(target, Via.SET_STATUS))


async def run_as_a_group(database: Database, inputs: Sequence[SetStepStatusInput]) -> list[dict[str, Any]]:
    """set_step_status run once for all of inputs, as a group runs it (alone false: skip what is locked)."""
    text = with_schema(load_statements("workflowstate.server.state", "state.sql")["set_step_status"], database.schema)
    options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    async with await psycopg.AsyncConnection.connect(
        database.database_url, autocommit=True, row_factory=dict_row, options=options
    ) as conn:
        cursor = await conn.execute(text, {**array_params(SetStepStatusInput, inputs), "alone": False})
        return await cursor.fetchall()


async def steps_of_a_new_run(state: StateStore, count: int) -> list[uuid.UUID]:
    run = await state.create_run("store-tier", "{}", None)
    return [(await state.insert_step(run["run_id"], f"step-{n}", "", "{}"))["step_id"] for n in range(count)]


async def test_a_group_of_mixed_outcomes_gets_one_row_per_input_with_its_ordinal(database: Database, state: StateStore) -> None:
    first, finished, last = await steps_of_a_new_run(state, 3)
    await state.set_step_status(finished, S.SUCCEEDED)
    assert S.SUCCEEDED.value not in step_sources(S.SCHEDULED, Via.SET_STATUS), "the illegal move below must stay illegal"
    inputs = [move(first, S.RUNNING), move(uuid.uuid4(), S.RUNNING), move(finished, S.SCHEDULED), move(last, S.SCHEDULED)]

    rows = await run_as_a_group(database, inputs)

    assert sorted((row["ordinal"], row["outcome"], row["status"]) for row in rows) == [
        (1, "changed", "running"), (2, "missing", None), (3, "illegal_transition", "succeeded"), (4, "changed", "scheduled"),
    ]  # fmt: skip


async def test_two_steps_of_one_run_in_one_statement_both_change(database: Database, state: StateStore) -> None:
    first, second = await steps_of_a_new_run(state, 2)

    rows = await run_as_a_group(database, [move(first, S.RUNNING), move(second, S.SUCCEEDED)])

    assert sorted((row["ordinal"], row["outcome"]) for row in rows) == [(1, "changed"), (2, "changed")]
    assert (await state.get_step_by_id(first))["status"] == "running"
    assert (await state.get_step_by_id(second))["status"] == "succeeded"


async def test_moves_of_steps_of_one_run_called_together_share_one_statement_and_all_change(
    database: Database, state: StateStore
) -> None:
    """Calls made in one turn of the event loop form one group (db/coalescer.py): the store runs
    them as one statement, and each caller gets its own step's row."""
    steps = await steps_of_a_new_run(state, 3)
    groups: list[tuple[str, int]] = []
    database.observe_groups(lambda statement, size: groups.append((statement, size)))
    try:
        rows = await asyncio.gather(*(state.set_step_status(step_id, S.RUNNING) for step_id in steps))
    finally:
        database.observe_groups(ignore_group)

    assert groups == [("set_step_status", 3)]
    assert [(row["step_id"], row["outcome"], row["status"]) for row in rows] == [
        (step_id, "changed", "running") for step_id in steps
    ]


async def test_a_step_locked_elsewhere_gets_no_row_in_a_group_and_runs_alone_once_released(
    database: Database, state: StateStore, db: psycopg.Connection
) -> None:
    held, free = await steps_of_a_new_run(state, 2)
    steps = sql.Identifier(database.schema, "steps")
    async with await psycopg.AsyncConnection.connect(database.database_url) as holder:
        await holder.execute(sql.SQL("SELECT FROM {} WHERE step_id = %s FOR UPDATE").format(steps), (held,))

        rows = await run_as_a_group(database, [move(held, S.RUNNING), move(free, S.RUNNING)])
        assert [(row["ordinal"], row["outcome"]) for row in rows] == [(2, "changed")], "the held step's input has no row"

        alone = asyncio.create_task(state.set_step_status(held, S.RUNNING))
        await asyncio.to_thread(wait_in_database, db, SOMEONE_WAITS_FOR, (holder.info.backend_pid,))
        assert not alone.done(), "run alone, the input waits for the lock instead of being skipped"
        await holder.rollback()

    assert (await alone)["status"] == "running"
