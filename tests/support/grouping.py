"""A server with grouping forced on (a test-only flag holds operations until a group of GROUP form,
so that the operations a test sends together are grouped for certain), and what its metrics say
of its groups (`workflowstate_db_group_size`: statements run, operations in them)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from support import metrics
from support.server_process import ServerProcess

GROUP = 3
# Long enough that the operations a test sends together always meet; a test never waits it out.
HOLD_SECONDS = "60"


def grouping_server(start_server: Callable[..., ServerProcess], group: int = GROUP) -> ServerProcess:
    return start_server("--test-group-hold", str(group), "--test-group-hold-seconds", HOLD_SECONDS, "--metrics-listen", "127.0.0.1:0")


def group_sizes(server: ServerProcess, statement: str) -> dict[str, float]:
    """The statement's group sizes so far: statements run, operations in them, and statements of at least 2 and at least GROUP."""
    return metrics.group_sizes(metrics.scrape(metrics.metrics_address(server.log_text())), statement, sizes=(2, GROUP))


def waits_on(holder: psycopg.Connection) -> str:
    """SQL: a statement waits for a lock the holder's transaction holds."""
    return f"EXISTS (SELECT FROM pg_stat_activity WHERE {holder.info.backend_pid} = ANY(pg_blocking_pids(pid)))"
