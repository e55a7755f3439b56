"""Every named statement of every .sql file PREPAREs on a freshly migrated schema, and every
statement's placeholders are exactly the parameters its typed input makes (what sqlc checks for
hatchet): a misspelt table, column or function, a parameter whose type PostgreSQL cannot infer, a
placeholder no input fills or an input's parameter no placeholder uses fails here, naming the file
and the statement, before any server runs it."""

from __future__ import annotations

import dataclasses
import re
import types
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Union, get_args, get_origin, get_type_hints

import psycopg
import pytest
from psycopg._queries import PostgresQuery  # private, and only to check the conversion below against psycopg's own
from psycopg.adapt import Transformer
from support.sql_files import named_statements
from support.typed_statements import UNTYPED, TypedStatement, to_postgres, typed_statements

from workflowstate.server.db.coalescer import GroupedStatement
from workflowstate.server.db.database import Database
from workflowstate.server.db.params import params_of
from workflowstate.server.db.statements import with_schema

STATEMENTS = named_statements()

# The coalescer matches a grouped statement's rows to its inputs by their `ordinal` column: the
# statements that name one (outside comments) are the grouped ones.
_ORDINAL = re.compile(r"\bordinal\b")
_COMMENT = re.compile(r"--[^\n]*")
GROUPED = sorted(place for place, statement in STATEMENTS.items() if _ORDINAL.search(_COMMENT.sub("", statement)))

# The parameter the coalescer adds to every grouped statement's: whether the input runs alone (it
# waits for its row's lock). A statement that never skips a locked row does not read it.
ALONE = "alone"


def as_psycopg_sends(statement: str, names: Sequence[str]) -> str:
    query = PostgresQuery(Transformer())
    query.convert(statement, dict.fromkeys(names))
    return bytes(query.query).decode()


def test_the_conversion_numbers_names_and_keeps_a_literal_percent_as_psycopg_does() -> None:
    statement = "SELECT %(a)s::int, '100%%', %(b)s::text, %(a)s::int"
    assert to_postgres(statement) == ("SELECT $1::int, '100%', $2::text, $1::int", ["a", "b"])
    assert as_psycopg_sends(statement, ["a", "b"]) == to_postgres(statement)[0]
    with pytest.raises(ValueError, match="not a named placeholder"):
        to_postgres("SELECT %s")


@pytest.fixture(scope="module")
async def connection(database: Database) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(database.database_url, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("place", sorted(STATEMENTS), ids=lambda place: f"{place[0]}:{place[1]}")
async def test_the_named_statement_prepares_on_the_migrated_schema(
    place: tuple[str, str], database: Database, connection: psycopg.AsyncConnection[Any]
) -> None:
    file, name = place
    statement = with_schema(STATEMENTS[place], database.schema)
    text, names = to_postgres(statement)
    assert text == as_psycopg_sends(statement, names), f"{file} {name}: psycopg would send another text"
    try:
        await connection.execute(f"PREPARE statement_check AS {text}")
    except psycopg.Error as err:
        # PostgreSQL's message points at the line and column (the statement starts on the first line).
        raise AssertionError(f"{file} {name} does not PREPARE: {type(err).__name__}: {err}") from None
    await connection.execute("DEALLOCATE statement_check")


def test_every_capability_file_and_the_grouped_statements_are_read() -> None:
    assert {file for file, _ in STATEMENTS} >= {"state.sql", "dispatch.sql", "leases.sql", "events.sql", "catalog.sql", "schedules.sql"}
    assert {name for _, name in GROUPED} >= {"get_run", "set_step_status", "fail_tasks", "lease_acquire", "run_events_of_run"}


@pytest.fixture(scope="module")
def typed(database: Database) -> dict[tuple[str, str], TypedStatement]:
    """The typed statements of the stores, as the stores build them, by (file, statement name).

    What is checked is what the stores run: its text and the parameters its input makes."""
    return typed_statements(database)


def test_every_named_statement_is_run_through_a_typed_statement(typed: dict[tuple[str, str], TypedStatement]) -> None:
    untyped = sorted(set(STATEMENTS) - set(typed) - UNTYPED)
    assert untyped == [], f"named statements no store runs through a typed statement (a new store? add it to support/typed_statements.py): {untyped}"


def test_the_stores_group_every_statement_that_returns_an_ordinal(typed: dict[tuple[str, str], TypedStatement]) -> None:
    grouped = {place for place, statement in typed.items() if isinstance(statement, GroupedStatement)}
    ungrouped, without_ordinal = sorted(set(GROUPED) - grouped), sorted(grouped - set(GROUPED))
    assert (ungrouped, without_ordinal) == ([], []), (
        f"statements returning an ordinal that no store built here groups (a new store? add it above): {ungrouped}; "
        f"grouped statements returning no ordinal: {without_ordinal}"
    )


_SAMPLES: dict[Any, Any] = {
    uuid.UUID: uuid.UUID(int=1),
    str: "x",
    int: 1,
    bool: False,
    float: 0.5,
    timedelta: timedelta(seconds=1),
    datetime: datetime(2026, 1, 1, tzinfo=UTC),
}


def sample_of(hint: Any) -> Any:
    """A value of the annotated type: None where it is optional."""
    if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
        return None
    if dataclasses.is_dataclass(hint):
        return sample_input(hint)
    if get_origin(hint) in (Sequence, list):
        return [sample_of(get_args(hint)[0])]
    return _SAMPLES[hint]


def sample_input(cls: type) -> Any:
    """One input of the dataclass, its defaults kept and every other field a value of its type."""
    hints = get_type_hints(cls)
    required = [field for field in dataclasses.fields(cls) if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
    return cls(**{field.name: sample_of(hints[field.name]) for field in required})


def parameters(statement: TypedStatement) -> dict[str, Any]:
    """The parameters the statement runs with for a sample of its input: a grouped statement's as
    the coalescer makes them (the store's bound ones too), another's as its Query does."""
    item = sample_input(statement.input_type)
    if isinstance(statement, GroupedStatement):
        return statement._params([item])
    return params_of(item)


@pytest.mark.parametrize("place", sorted(set(STATEMENTS) - UNTYPED), ids=lambda place: f"{place[0]}:{place[1]}")
def test_the_statement_s_placeholders_are_its_input_s_parameters(
    place: tuple[str, str], typed: dict[tuple[str, str], TypedStatement]
) -> None:
    file, name = place
    statement = typed[place]
    placeholders = set(to_postgres(statement._text)[1])
    given = set(parameters(statement)) | ({ALONE} & placeholders if isinstance(statement, GroupedStatement) else set())
    unfilled, unused = sorted(placeholders - given), sorted(given - placeholders)
    assert (unfilled, unused) == ([], []), (
        f"{file} {name} and its input {statement.input_type.__name__} disagree: placeholders no parameter fills: {unfilled}; "
        f"parameters no placeholder uses: {unused}"
    )
