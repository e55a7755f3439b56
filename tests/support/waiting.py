"""Wait for a condition inside PostgreSQL, bounded by a statement timeout: an awaited event, not a sleep."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

SOMEONE_WAITS_FOR_A_LOCK = "EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock')"
NOBODY_WAITS_FOR_A_LOCK = "NOT " + SOMEONE_WAITS_FOR_A_LOCK


def wait_in_database(db: psycopg.Connection, condition: str, params: tuple[Any, ...] = (), *, timeout: float = 30.0) -> None:
    """Return once `condition` (SQL, with {} for each of params) holds; QueryCanceled after timeout."""
    check = sql.SQL(condition).format(*[sql.Literal(param) for param in params])
    with psycopg.connect(db.info.dsn, autocommit=True) as watcher:
        watcher.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(timeout * 1000)),))
        watcher.execute(sql.SQL("DO $$ BEGIN WHILE NOT ({}) LOOP PERFORM pg_sleep(0.01); END LOOP; END $$").format(check))
