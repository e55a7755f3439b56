"""Load the named SQL statements of sql/queries.sql and the numbered migrations.

Every statement lives in a .sql file, never in Python strings. The schema name is put in with
psycopg.sql.Identifier (quoted by the driver) once at start-up, so the text the store executes
is fixed and PostgreSQL can prepare it.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import NamedTuple

from psycopg import sql

_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


class Migration(NamedTuple):
    version: int
    name: str
    text: str


def _sql_dir():
    return resources.files("workflowstate.server") / "sql"


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a file of `-- name --` sections into {name: statement}."""
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if len(queries) != len(parts[1::2]):
        raise ValueError("duplicate query name in queries.sql")
    return queries


def load_queries() -> dict[str, str]:
    """The named statements, with the {schema} placeholder still in them."""
    return parse_named_queries((_sql_dir() / "queries.sql").read_text(encoding="utf-8"))


def load_migrations() -> list[Migration]:
    """The migrations in version order; file names are NNNN_description.sql."""
    migrations = []
    for entry in (_sql_dir() / "migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            migrations.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    migrations.sort()
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return migrations


def with_schema(statement: str, schema: str) -> sql.Composed:
    """Put the quoted schema identifier where the statement says {schema}."""
    return sql.SQL(statement).format(schema=sql.Identifier(schema))
