"""Named SQL statements: each capability keeps its statements in one .sql file beside its code.

A file is a series of `-- name --` sections, each with a comment saying what the statement does.
Every statement lives in a .sql file, never in Python strings. The schema name is put in with
psycopg.sql.Identifier (quoted by the driver) once, when a store loads its file, so the text the
store executes is fixed and PostgreSQL can prepare it.
"""

from __future__ import annotations

import re
from importlib import resources

from psycopg import sql

_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)


def parse_named_statements(text: str) -> dict[str, str]:
    """Split a file of `-- name --` sections into {name: statement}."""
    parts = _HEADER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    statements = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    if len(statements) != len(parts[1::2]):
        raise ValueError("duplicate statement name")
    return statements


def load_statements(package: str, filename: str) -> dict[str, str]:
    """The named statements of one capability's .sql file, with {schema} still in them."""
    return parse_named_statements((resources.files(package) / filename).read_text(encoding="utf-8"))


def with_schema(statement: str, schema: str) -> str:
    """The statement with the quoted schema identifier where it says {schema}."""
    return sql.SQL(statement).format(schema=sql.Identifier(schema)).as_string(None)
