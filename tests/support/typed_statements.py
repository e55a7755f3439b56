"""The typed statements of every store (a Query or a grouped statement, each with its input type and
row type), by the (file, statement name) of the named statement each runs: what the statement
tests check against PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from support.sql_files import named_statements

from workflowstate.server.db.coalescer import GroupedStatement
from workflowstate.server.db.database import Database, Query
from workflowstate.server.db.statements import with_schema
from workflowstate.server.dispatch.defaults import DefaultsStore
from workflowstate.server.dispatch.store import TaskStore
from workflowstate.server.dispatch.workers import ServerIdentity, WorkerStreams
from workflowstate.server.events.store import EventStore
from workflowstate.server.leases.store import LeaseStore
from workflowstate.server.retention.store import RetentionStore
from workflowstate.server.schedules.store import ScheduleStore
from workflowstate.server.state.catalog import RunCatalog
from workflowstate.server.state.store import StateStore
from workflowstate.server.state.versions import VersionStore

TypedStatement = GroupedStatement[Any, Any] | Query[Any, Any]

# psycopg's named placeholder, and `%%`, a literal percent sign; any other `%` is a placeholder form
# our SQL does not use (positional, binary).
_PLACEHOLDER = re.compile(r"%%|%\((?P<name>[a-z_]+)\)s|%")

# Named statements no store runs: the health probe's round trip (db/database.py), which takes nothing and reads nothing.
UNTYPED = {("database.sql", "ping")}


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


def every_store(database: Database) -> list[object]:
    """One of each store of the server (a new store? add it here)."""
    return [
        StateStore(database),
        RunCatalog(database),
        VersionStore(database),
        TaskStore(database),
        DefaultsStore(database),
        WorkerStreams(database, ServerIdentity(uuid.uuid4(), "127.0.0.1:1")),
        LeaseStore(database, server_id=uuid.uuid4(), waiter_ttl=timedelta(seconds=30)),
        EventStore(database),
        ScheduleStore(database),
        RetentionStore(database),
    ]


def _typed(value: object) -> list[TypedStatement]:
    if isinstance(value, GroupedStatement | Query):
        return [value]
    if isinstance(value, dict):
        return [item for inner in value.values() for item in _typed(inner)]
    return []


def typed_statements(database: Database) -> dict[tuple[str, str], TypedStatement]:
    """Every typed statement the stores hold, by the (file, statement name) whose text it runs."""
    statements = named_statements()
    found = [item for store in every_store(database) for value in vars(store).values() for item in _typed(value)]
    return {
        next(place for place in statements if place[1] == item.name and with_schema(statements[place], database.schema) == item._text): item
        for item in found
    }
