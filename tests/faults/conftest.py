"""Fixtures the fault scenarios share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.controllable_postgres import ControllablePostgres, controllable_postgres


@pytest.fixture
def postgres() -> Iterator[ControllablePostgres]:
    """A PostgreSQL of the test's own that it may stop, restart, freeze and thaw."""
    with controllable_postgres() as started:
        yield started
