"""No SQL decides on a status literal: the statuses a statement compares with or writes come from
the transition table (server/state/transitions.py) as parameters, so the table is the one place a
move is decided. Checked over every .sql file of the server, the migrations and schema.sql
included; the places that must name a status in SQL are listed below, each with why.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

from support.sql_files import SCHEMA, SERVER, named_sql_files

from workflowstate.server.db.statements import parse_named_statements
from workflowstate.server.state import transitions

MIGRATIONS = SERVER / "db" / "migrations"

# Every status value of the transition table: steps, runs, workflow versions.
STATUSES = frozenset(
    member.value
    for value in vars(transitions).values()
    if isinstance(value, type) and issubclass(value, enum.Enum) and value.__name__.endswith("Status")
    for member in value
)

# The kinds of schema statement (in the migrations and schema.sql) that must name statuses, as a
# parameter cannot: a CHECK constraint names a column's domain; a partial index's predicate names
# the rows the index holds; a trigger's WHEN names the rows it fires for; a migration's one-time
# update of existing rows runs once, on the statuses of its day. Functions are code: checked.
SCHEMA_KINDS = {
    "table definition (CHECK constraints)": re.compile(r"(CREATE|ALTER) TABLE\b"),
    "partial index predicate": re.compile(r"CREATE (UNIQUE )?INDEX\b"),
    "trigger condition": re.compile(r"CREATE TRIGGER\b"),
}
MIGRATION_KINDS = {"one-time update of existing rows": re.compile(r"UPDATE\b")}

# The named statements that name statuses, with the literals each may name and why.
NAMED_STATEMENTS = {
    ("catalog.sql", "delete_run"): ({"running"}, "an outcome's name (the run is running), not a status compared with"),
    ("catalog.sql", "list_stalled_runs"): ({"running"}, "repeats the predicate of the partial index runs_running_by_update_time"),
    ("catalog.sql", "list_undispatched_steps"): (
        {"pending", "running"},
        "repeats the predicate of the partial index steps_pending_by_update_time; the run filter is running only",
    ),
    ("retention.sql", "erase_expired_runs"): ({"running", "suspended"}, "repeats the predicate of runs_finished_by_update_time"),
    ("retention.sql", "erase_expired_runs_of_workflow"): (
        {"running", "suspended"},
        "repeats the predicate of runs_finished_by_update_time",
    ),
}


def without_comments(text: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def status_literals(code: str) -> list[str]:
    return [word for word in re.findall(r"'(\w+)'", code) if word in STATUSES]


def schema_statements(text: str) -> list[str]:
    """The statements of a migration or schema.sql: split at the semicolons outside dollar-quoted bodies."""
    statements, start, body_tag = [], 0, None
    for match in re.finditer(r"\$\w*\$|;", text):
        if match.group() != ";":
            body_tag = None if body_tag == match.group() else body_tag or match.group()
        elif body_tag is None:
            statements.append(text[start : match.end()].strip())
            start = match.end()
    return [statement for statement in [*statements, text[start:].strip()] if statement]


def schema_sql_files() -> list[Path]:
    return [*sorted(MIGRATIONS.glob("*.sql")), SCHEMA]


def test_the_check_reads_every_sql_file_and_every_status() -> None:
    assert STATUSES >= {"pending", "scheduled", "running", "suspended", "succeeded", "failed", "completed", "cancelled", "draft"}
    assert {path.name for path in named_sql_files()} >= {"state.sql", "dispatch.sql", "catalog.sql", "leases.sql", "schedules.sql"}
    assert len(schema_sql_files()) > 2
    for path in named_sql_files():
        assert parse_named_statements(path.read_text(encoding="utf-8")), f"{path.name} has no -- name -- statements"


def test_no_named_statement_decides_on_a_status_literal() -> None:
    found: dict[tuple[str, str], set[str]] = {}
    for path in named_sql_files():
        for name, statement in parse_named_statements(path.read_text(encoding="utf-8")).items():
            literals = status_literals(without_comments(statement))
            if literals:
                found[(path.name, name)] = set(literals)
    unlisted = {place: literals for place, literals in found.items() if not literals <= NAMED_STATEMENTS.get(place, (set(), ""))[0]}
    assert unlisted == {}, f"status literals in SQL: pass them from transitions.py as parameters: {unlisted}"
    stale = set(NAMED_STATEMENTS) - set(found)
    assert stale == set(), f"allowed places that name no status any more: take them off the list: {stale}"


def test_no_schema_function_decides_on_a_status_literal() -> None:
    unlisted = []
    for path in schema_sql_files():
        kinds = [*SCHEMA_KINDS.values(), *(MIGRATION_KINDS.values() if path.parent == MIGRATIONS else [])]
        for statement in schema_statements(without_comments(path.read_text(encoding="utf-8"))):
            literals = status_literals(statement)
            if literals and not any(kind.match(statement) for kind in kinds):
                unlisted.append((path.name, statement.splitlines()[0], literals))
    assert unlisted == [], f"status literals in SQL code: pass them from transitions.py as parameters: {unlisted}"


def test_the_splitter_keeps_a_function_body_whole() -> None:
    text = "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\nCREATE INDEX i ON t (a) WHERE b = 'x';"
    assert [statement.split()[:2] for statement in schema_statements(text)] == [["CREATE", "FUNCTION"], ["CREATE", "INDEX"]]
