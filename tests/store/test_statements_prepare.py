"""Every named statement of every .sql file PREPAREs on a freshly migrated schema, and every grouped
statement's placeholders are exactly the parameters its typed input makes (what sqlc checks for
hatchet): a misspelt table, column or function, a parameter whose type PostgreSQL cannot infer, a
placeholder no input fills or an input's parameter no placeholder uses fails here, naming the file
and the statement, before any server runs it."""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Union, get_args, get_origin, get_type_hints

import psycopg
import pytest
from psycopg._queries import PostgresQuery  # private, and only to check the conversion below against psycopg's own
from psycopg.adapt import Transformer
from support.sql_files import named_statements

from workflowstate.server.db.coalescer import GroupedStatement
from workflowstate.server.db.database import Database
from workflowstate.server.db.statements import with_schema
from workflowstate.server.dispatch.store import TaskStore
from workflowstate.server.events.store import EventStore
from workflowstate.server.leases.store import LeaseStore
from workflowstate.server.state.store import StateStore

STATEMENTS = named_statements()

# The coalescer matches a grouped statement's rows to its inputs by their `ordinal` column: the
# statements that name one (outside comments) are the grouped ones.
_ORDINAL = re.compile(r"\bordinal\b")
_COMMENT = re.compile(r"--[^\n]*")
GROUPED = sorted(place for place, statement in STATEMENTS.items() if _ORDINAL.search(_COMMENT.sub("", statement)))

# psycopg's named placeholder, and `%%`, a literal percent sign; any other `%` is a placeholder form
# our SQL does not use (positional, binary).
_PLACEHOLDER = re.compile(r"%%|%\((?P<name>[a-z_]+)\)s|%")

# The parameter the coalescer adds to every grouped statement's: whether the input runs alone (it
# waits for its row's lock). A statement that never skips a locked row does not read it.
ALONE = "alone"


def to_postgres(statement: str) -> tuple[str, list[str]]:
    """The statement as psycopg sends it, each named placeholder a $n (one n per name, numbered in
    the order of first use) and `%%` a `%`; and the names, $1's first."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group() == "%%":
            return "%"
        name = match.group("name")
        if name is None:
            raise ValueError(f"a % that is not a named placeholder: ...{statement[match.start() : match.start() + 30]!r}")
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, statement), names


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
def grouped(database: Database) -> dict[tuple[str, str], GroupedStatement[Any]]:
    """The grouped statements of the stores, as the stores build them, by (file, statement name).

    What is checked is what the coalescer runs: its text and its `params`, which it keeps private."""
    stores = [
        StateStore(database),
        TaskStore(database),
        LeaseStore(database, server_id=uuid.uuid4(), waiter_ttl=timedelta(seconds=30)),
        EventStore(database),
    ]
    found = [value for store in stores for value in vars(store).values() if isinstance(value, GroupedStatement)]
    # The file a statement comes from: the one whose statement of that name is the text it runs.
    return {
        next(place for place in STATEMENTS if place[1] == item.name and with_schema(STATEMENTS[place], database.schema) == item._text): item
        for item in found
    }


def test_the_stores_group_every_statement_that_returns_an_ordinal(grouped: dict[tuple[str, str], GroupedStatement[Any]]) -> None:
    ungrouped, without_ordinal = sorted(set(GROUPED) - set(grouped)), sorted(set(grouped) - set(GROUPED))
    assert (ungrouped, without_ordinal) == ([], []), (
        f"statements returning an ordinal that no store built here groups (a new store? add it above): {ungrouped}; "
        f"grouped statements returning no ordinal: {without_ordinal}"
    )


_SAMPLES: dict[Any, Any] = {
    uuid.UUID: uuid.UUID(int=1),
    str: "x",
    int: 1,
    bool: False,
    timedelta: timedelta(seconds=1),
    datetime: datetime(2026, 1, 1, tzinfo=UTC),
}


def sample_of(hint: Any) -> Any:
    """A value of the annotated type: None where it is optional."""
    if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
        return None
    if dataclasses.is_dataclass(hint):
        return sample_input(hint)
    if get_origin(hint) is Sequence:
        return [sample_of(get_args(hint)[0])]
    return _SAMPLES[hint]


def sample_input(cls: type) -> Any:
    """One input of the dataclass, its defaults kept and every other field a value of its type."""
    hints = get_type_hints(cls)
    required = [field for field in dataclasses.fields(cls) if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
    return cls(**{field.name: sample_of(hints[field.name]) for field in required})


def input_type(params: Callable[..., dict[str, Any]]) -> type:
    """The input class a grouped statement's params take, read from its annotation `inputs: Sequence[...]`."""
    function = params.func if isinstance(params, functools.partial) else params
    (item,) = get_args(get_type_hints(function)["inputs"])
    return item


@pytest.mark.parametrize("place", GROUPED, ids=lambda place: f"{place[0]}:{place[1]}")
def test_the_grouped_statement_s_placeholders_are_its_input_s_parameters(
    place: tuple[str, str], grouped: dict[tuple[str, str], GroupedStatement[Any]]
) -> None:
    file, name = place
    statement = grouped[place]
    placeholders = set(to_postgres(statement._text)[1])
    cls = input_type(statement._params)
    given = set(statement._params([sample_input(cls)])) | ({ALONE} & placeholders)
    unfilled, unused = sorted(placeholders - given), sorted(given - placeholders)
    assert (unfilled, unused) == ([], []), (
        f"{file} {name} and {cls.__name__}.params disagree: placeholders no parameter fills: {unfilled}; "
        f"parameters no placeholder uses: {unused}"
    )
