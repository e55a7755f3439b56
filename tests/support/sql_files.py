"""The server's .sql files, for the checks that read every one of them."""

from __future__ import annotations

from pathlib import Path

from workflowstate import server
from workflowstate.server.db.statements import parse_named_statements

SERVER = Path(server.__file__).parent
SCHEMA = SERVER / "db" / "schema.sql"


def named_sql_files() -> list[Path]:
    """Every capability's file of `-- name --` statements (schema.sql is the schema, not named statements)."""
    return sorted(path for path in SERVER.glob("*/*.sql") if path != SCHEMA)


def named_statements() -> dict[tuple[str, str], str]:
    """Every named statement of every file, by (file name, statement name), with {schema} still in it."""
    return {
        (path.name, name): statement
        for path in named_sql_files()
        for name, statement in parse_named_statements(path.read_text(encoding="utf-8")).items()
    }
