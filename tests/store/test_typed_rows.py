"""Typed rows: each statement's row has exactly the keys its TypedDict (the stores' rows.py) declares,
read from the statements described and run on a freshly migrated schema, so a statement and its row
type cannot drift apart unnoticed."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import psycopg
import pytest
from psycopg import pq
from support.sql_files import named_statements
from support.typed_statements import UNTYPED, TypedStatement, to_postgres, typed_statements

from workflowstate.server.db.database import Database
from workflowstate.server.dispatch.store import TaskStore
from workflowstate.server.state import rows
from workflowstate.server.state.store import StateStore
from workflowstate.server.state.transitions import RunStatus, StepStatus


def _misfit(row: Collection[str] | Mapping[str, Any], shape: Any) -> tuple[set[str], set[str]]:
    """The keys the shape requires that the row lacks, and the row's keys the shape does not declare."""
    return set(shape.__required_keys__) - set(row), set(row) - shape.__required_keys__ - shape.__optional_keys__


@pytest.fixture(scope="module")
def typed(database: Database) -> dict[tuple[str, str], TypedStatement]:
    return typed_statements(database)


@pytest.fixture(scope="module")
def described(database: Database) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database.database_url, autocommit=True) as conn:
        yield conn


def columns_of(conn: psycopg.Connection[Any], text: str) -> list[str]:
    """The names of the columns the statement returns, as PostgreSQL describes it once prepared (nothing runs)."""
    prepared = conn.pgconn.prepare(b"", to_postgres(text)[0].encode())
    assert prepared.status == pq.ExecStatus.COMMAND_OK, prepared.error_message.decode()
    result = conn.pgconn.describe_prepared(b"")
    return [(result.fname(column) or b"").decode() for column in range(result.nfields)]


@pytest.mark.parametrize("place", sorted(set(named_statements()) - UNTYPED), ids=lambda place: f"{place[0]}:{place[1]}")
def test_the_statement_s_columns_are_its_row_type_s_keys(
    place: tuple[str, str], typed: dict[tuple[str, str], TypedStatement], described: psycopg.Connection[Any]
) -> None:
    statement = typed[place]
    lacking, undeclared = _misfit(columns_of(described, statement._text), statement.row_type)
    assert (lacking, undeclared) == (set(), set()), (
        f"{place[0]} {place[1]} and its row type {statement.row_type.__name__} disagree: "
        f"keys the type requires that the statement does not return: {sorted(lacking)}; columns the type does not declare: {sorted(undeclared)}"
    )


async def test_each_store_row_has_the_keys_of_its_typed_row(database_url: str) -> None:
    database = Database(database_url, f"t_{uuid.uuid4().hex[:10]}")
    await database.open()
    try:
        state, tasks = StateStore(database), TaskStore(database)
        run = await state.create_run("typed", "{}", None)
        run_id = run["run_id"]
        child = await state.create_run("typed-child", "{}", None)
        step = await state.insert_step(run_id, "a", "", "{}")
        step_id = step["step_id"]
        shapes = [
            (run, rows.RunWriteRow),
            (await state.get_run(run_id), rows.RunRow),
            (step, rows.StepWriteRow),
            (await state.get_step(run_id, "a"), rows.StepRow),
            (await state.get_step_by_id(step_id), rows.StepRow),
            (await state.claim_step(run_id, "a", "r"), rows.StepMoveRow),
            (await state.set_step_child_run(step_id, child["run_id"]), rows.StepLinkRow),
            (await state.set_step_branch(step_id, "left"), rows.StepLinkRow),
            (await state.set_step_status(step_id, StepStatus.FAILED), rows.StepMoveRow),
            (await state.create_retry_attempt(step_id, StepStatus.RUNNING), rows.StepMoveRow),
            (await state.update_run_status(run_id, RunStatus.COMPLETED, output_json="1", error=None), rows.RunWriteRow),
            *[(row, rows.FinishedRunRow) for row in await tasks.finished_runs([run_id])],
        ]
        assert [(shape.__name__, _misfit(row, shape)) for row, shape in shapes] == [(shape.__name__, (set(), set())) for _, shape in shapes]
    finally:
        await database.close()
