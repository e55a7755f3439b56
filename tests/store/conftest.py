"""The store tier: the stores and their SQL against the session's PostgreSQL, no server process.

Each test module gets a freshly migrated schema of its own (`Database.open` migrates it), dropped
when the module ends, so its rows meet no other test's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import sql

from workflowstate.server.db.database import Database
from workflowstate.server.state.store import StateStore


@pytest.fixture(scope="module")
async def database(database_url: str) -> AsyncIterator[Database]:
    schema = f"store_{uuid.uuid4().hex[:10]}"
    database = Database(database_url, schema)
    await database.open()
    try:
        yield database
    finally:
        await database.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def state(database: Database) -> StateStore:
    return StateStore(database)
