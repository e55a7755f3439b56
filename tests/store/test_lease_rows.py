"""The lease rows the stores hand on have exactly the keys their TypedDicts (leases/rows.py) declare,
read from leases.sql's statements run on a freshly migrated schema."""

from __future__ import annotations

import uuid
from datetime import timedelta

from workflowstate.server.db.database import Database
from workflowstate.server.leases import rows
from workflowstate.server.leases.store import LeaseStore


async def test_held_and_live_lease_rows_have_the_keys_of_their_typed_rows(database: Database) -> None:
    store = LeaseStore(database, server_id=uuid.uuid4(), waiter_ttl=timedelta(seconds=30))
    key = f"typed-rows-{uuid.uuid4().hex}"
    granted = await store.try_acquire(key, uuid.uuid4(), "holder", timedelta(minutes=1), ticket=None, enqueue=False)
    assert granted.granted
    (held,) = await store.held(key, None, 10)
    live = await store.get(key)
    assert live is not None
    # The live lease of one key is handed on as a held lease (its columns set), as the listing's are.
    shapes = [(held, rows.HeldLeaseRow), (live, rows.HeldLeaseRow)]
    assert [(shape.__name__, set(row)) for row, shape in shapes] == [(shape.__name__, set(shape.__annotations__)) for _, shape in shapes]
