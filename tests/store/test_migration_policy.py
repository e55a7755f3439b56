"""The migration policy (README, "Upgrades"), what of it a machine can check: migrations are forward only,
a released one is never edited, and the schema after this release's migrations still serves the
previous release's servers, which run on during a rolling upgrade.

The previous release's named statements come from the repository's history (support/release_trees.py):
each must PREPARE on the current schema, so a migration that drops or renames a table, a column or a
function they use, or changes a type they depend on, fails here naming the file and the statement.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import PurePosixPath
from typing import Any

import psycopg
import pytest
from psycopg import sql
from support.faults_processes import SUPPORT
from support.release_trees import (
    PREVIOUS_RELEASE,
    export_previous_release,
    package_root,
    previous_release_file,
    previous_release_paths,
)
from support.typed_statements import to_postgres

from workflowstate.server.db.database import Database
from workflowstate.server.db.migrate import load_migrations
from workflowstate.server.db.statements import parse_named_statements, with_schema

MIGRATIONS = "server/db/migrations"


def previous_release_statements() -> dict[tuple[str, str], str]:
    """Every named statement of the previous release's capability files, by (path, statement name)."""
    paths = [
        path
        for path in previous_release_paths("server")
        if path.endswith(".sql") and not path.startswith(f"{MIGRATIONS}/") and PurePosixPath(path).name != "schema.sql"
    ]
    return {
        (path, name): statement
        for path in paths
        for name, statement in parse_named_statements(previous_release_file(path)).items()
    }


def previous_release_migrations() -> dict[str, str]:
    """The previous release's migration files, by file name."""
    return {PurePosixPath(path).name: previous_release_file(path) for path in previous_release_paths(MIGRATIONS)}


STATEMENTS = previous_release_statements()
RELEASED = previous_release_migrations()

# What a migration after the previous release's may not do, because a server of that release still
# runs on the schema while it is applied (and for as long as a rolling upgrade lasts): take away or
# reshape what its statements read and write, or refuse the rows it inserts.
_FORBIDDEN = {
    "drops a table, view, column, function, type or schema": re.compile(r"\bDROP\s+(TABLE|VIEW|COLUMN|FUNCTION|TYPE|SCHEMA)\b", re.I),
    "renames something": re.compile(r"\bRENAME\b", re.I),
    "changes a column's type": re.compile(r"\bALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE\b", re.I),
    "makes a column NOT NULL": re.compile(r"\bSET\s+NOT\s+NULL\b", re.I),
    # An ADD COLUMN clause (up to its comma or semicolon) saying NOT NULL and no DEFAULT.
    "adds a NOT NULL column without a default": re.compile(r"\bADD\s+COLUMN\b(?![^,;]*\bDEFAULT\b)[^,;]*\bNOT\s+NULL\b", re.I),
}
_COMMENT = re.compile(r"--[^\n]*")


@pytest.fixture(scope="module")
async def connection(database: Database) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(database.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def previous_schema(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A schema migrated by the previous release's own code: what its servers prepared their statements on."""
    folder = tmp_path_factory.mktemp("previous-release")
    packages = package_root(export_previous_release(folder / "checkout"), folder / "packages")
    schema = f"previous_{uuid.uuid4().hex[:10]}"
    done = subprocess.run(
        [sys.executable, str(SUPPORT / "migrate_process.py"), database_url, schema],
        env={**os.environ, "PYTHONPATH": str(packages)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == list(range(1, len(RELEASED) + 1))
    try:
        yield schema
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def result_columns(connection: psycopg.AsyncConnection[Any], statement: str, schema: str) -> list[tuple[str, str]]:
    """The columns (name, type) the statement returns on the schema, the schema's name taken out of its types."""
    await connection.execute(f"PREPARE result_check AS {to_postgres(with_schema(statement, schema))[0]}")
    try:
        described = connection.pgconn.describe_prepared(b"result_check")
        columns = [((described.fname(i) or b"").decode(), described.ftype(i)) for i in range(described.nfields)]
        cursor = await connection.execute("SELECT format_type(oid, NULL) FROM unnest(%s::oid[]) WITH ORDINALITY AS t(oid, n) ORDER BY n", ([oid for _, oid in columns],))
        types = [row[0] for row in await cursor.fetchall()]
    finally:
        await connection.execute("DEALLOCATE result_check")
    prefixes = (f"{sql.Identifier(schema).as_string(None)}.", f"{schema}.")
    return [(name, type_.removeprefix(prefixes[0]).removeprefix(prefixes[1])) for (name, _), type_ in zip(columns, types, strict=True)]


def test_the_previous_release_is_read_whole() -> None:
    assert {PurePosixPath(path).name for path, _ in STATEMENTS} >= {"state.sql", "leases.sql", "dispatch.sql", "schedules.sql"}
    assert len(STATEMENTS) > 50, f"only {len(STATEMENTS)} named statements found in the previous release"
    assert len(RELEASED) > 10, f"only {len(RELEASED)} migrations found in the previous release"


@pytest.mark.parametrize("place", sorted(STATEMENTS), ids=lambda place: f"{PurePosixPath(place[0]).name}:{place[1]}")
async def test_the_previous_release_s_statement_prepares_on_the_current_schema(
    place: tuple[str, str], database: Database, connection: psycopg.AsyncConnection[Any]
) -> None:
    path, name = place
    text, _ = to_postgres(with_schema(STATEMENTS[place], database.schema))
    try:
        await connection.execute(f"PREPARE previous_release_check AS {text}")
    except psycopg.Error as err:
        raise AssertionError(
            f"{path} {name} of release {PREVIOUS_RELEASE} does not PREPARE on this release's schema, so a server of that "
            f"release fails on it during an upgrade: {type(err).__name__}: {err}"
        ) from None
    await connection.execute("DEALLOCATE previous_release_check")


@pytest.mark.parametrize("place", sorted(STATEMENTS), ids=lambda place: f"{PurePosixPath(place[0]).name}:{place[1]}")
async def test_the_previous_release_s_statement_returns_the_same_columns_on_the_current_schema(
    place: tuple[str, str], database: Database, previous_schema: str, connection: psycopg.AsyncConnection[Any]
) -> None:
    """A server keeps its statements prepared; PostgreSQL refuses to run one whose result columns a
    migration changed ("cached plan must not change result type"): a column added to a table it
    returns with `*` fails every such call of a previous release's server until it restarts."""
    path, name = place
    before = await result_columns(connection, STATEMENTS[place], previous_schema)
    after = await result_columns(connection, STATEMENTS[place], database.schema)
    assert after == before, (
        f"{path} {name} of release {PREVIOUS_RELEASE} returns other columns on this release's schema, so its prepared "
        f"statement fails on a server of that release during an upgrade: before {before}, after {after}"
    )


def test_released_migrations_are_never_edited() -> None:
    """Forward only: a database migrated by the previous release records its migrations as applied and
    never runs them again, so an edit would leave its schema unlike a new database's."""
    current = {f"{m.version:04d}_{m.name}.sql": m.text for m in load_migrations()}
    missing = sorted(set(RELEASED) - set(current))
    edited = sorted(name for name in set(RELEASED) & set(current) if current[name] != RELEASED[name])
    assert (missing, edited) == ([], []), (
        f"released migrations removed or renamed: {missing}; edited: {edited}. Change the schema with a new migration instead"
    )


def test_a_migration_after_the_previous_release_takes_away_nothing_that_release_uses() -> None:
    newer = [m for m in load_migrations() if f"{m.version:04d}_{m.name}.sql" not in RELEASED]
    broken = [
        f"{m.version:04d}_{m.name}.sql {what}"
        for m in newer
        for what, pattern in _FORBIDDEN.items()
        if pattern.search(_COMMENT.sub("", m.text))
    ]
    assert broken == [], f"migrations a server of release {PREVIOUS_RELEASE} cannot run beside (see README, Upgrades): {broken}"
