"""The name of the PostgreSQL schema holding the tables (--schema), checked once, at the start.

A plain lower-case identifier only: it is put in statements as a quoted identifier and nowhere
else, but a name that needs no quoting cannot surprise a tool, a log line or a function body
either, and a name over 63 bytes would be cut short by PostgreSQL (so two long names could meet).
The standard library only: the command line checks it before the server extras load.
"""

from __future__ import annotations

import re

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
RULE = "1 to 63 lower-case letters, digits and '_', not starting with a digit"


def check_schema_name(name: str) -> str:
    """`name` when it is a usable schema name; ValueError saying what one is otherwise."""
    if not SCHEMA_NAME.fullmatch(name):
        shown = repr(name) if len(name) <= 80 else f"{name[:80]!r}... ({len(name)} characters)"
        raise ValueError(f"the schema name must be {RULE}, got {shown}")
    return name


__all__ = ["RULE", "SCHEMA_NAME", "check_schema_name"]
