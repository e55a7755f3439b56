"""`workflowstate migrate`: apply the migrations a schema lacks and exit, for a deploy step that runs
once before the replicas (`serve --no-migrate`) start. The same code path as `serve`'s own start:
wait for the database up to --startup-timeout, then the migrations under their advisory lock.

A server command like `serve` (it needs the server extras, imported only when it runs), not an
operator command: those (cli_*.py) reach a server through the client alone."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from .cli_filters import positive_number
from .cli_parser import EnvParser


def add_command(commands: Any, schema_name: Callable[[str], str]) -> None:
    """Add `migrate` to the subcommands; `schema_name` is serve's --schema check, so both take the same names."""
    migrate: EnvParser = commands.add_parser(
        "migrate",
        help="apply the migrations the schema lacks, then exit (a deploy step before `serve --no-migrate` replicas)",
        description="Apply the migrations the schema lacks and exit: 0 once the schema is current (printing each "
        "migration applied), 1 when the database cannot be reached or its schema is newer than this release. "
        "Safe to run twice, and beside running servers. Each flag also reads WORKFLOWSTATE_<FLAG>.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    migrate.add_argument("--database-url", default=None, help="PostgreSQL URL (required)")
    migrate.add_argument("--schema", type=schema_name, default="workflows", help="PostgreSQL schema of the tables, as serve's --schema")
    migrate.add_argument("--startup-timeout", type=positive_number(float, "number"), default=30.0, help="seconds to wait for the database")
    migrate.read_environment()
    migrate.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.database_url is None:
        print("workflowstate migrate: no database URL: pass --database-url or set WORKFLOWSTATE_DATABASE_URL", file=sys.stderr)
        return 2
    try:
        from ..core.errors import Unavailable
        from ..db.migrate import load_migrations
    except ImportError as err:
        print(f"workflowstate migrate needs the server extras: pip install 'workflowstate[server]' ({err})", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(_apply(args.database_url, args.schema, args.startup_timeout))
    except Unavailable as err:
        print(f"workflowstate migrate: cannot reach the database: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # a schema newer than this release
        print(f"workflowstate migrate: {err}", file=sys.stderr)
        return 1
    names = {migration.version: migration.name for migration in load_migrations()}
    for number in applied:
        print(f"applied {number:04d}_{names[number]}")
    newest = max(names)
    print(f"schema {args.schema!r} is at migration {newest}" + ("" if applied else ": nothing applied"))
    return 0


async def _apply(database_url: str, schema: str, timeout: float) -> list[int]:
    from ..db.database import Database, PoolSettings

    database = Database(database_url, schema, PoolSettings(min_size=1, max_size=1))
    try:
        return await database.open(timeout=timeout)
    finally:
        await database.close()
