"""Apply a release's migrations to a schema and exit, as a deploy step does before new servers start.

    PYTHONPATH=RELEASE_PACKAGES python migrate_process.py DATABASE_URL SCHEMA

Runs the migrate() of the workflowstate package found first on the path (the release under test,
support/release_trees.py), the function `serve` runs at start-up, and prints the versions it applied
as a JSON list on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys

import psycopg
from psycopg.rows import dict_row

from workflowstate.server.db.migrate import migrate


async def main(database_url: str, schema: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        return await migrate(conn, schema)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
