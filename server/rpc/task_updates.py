"""A worker's StepTaskUpdates: several acks, completes and fails in one message, each run as if alone.

Nothing is shared between updates: each is the separate message's code path (its validation, its
own statement, its own accepted or refused), never a transaction. What bulk changes is only how
they are carried, and that updates of different tasks run concurrently, as separate streams' would.

Updates of one task (the same step named twice) run in their order, as they would one message at a
time: a complete then an ack of the same attempt must see the complete's effect. So a message that
names a step twice runs wholly in order; one that names each step once runs on at most
`concurrency` workers (the pool's size), so that its updates wait for a connection no longer than
other clients' calls make them (started all at once, a thousand would queue for ten connections
and those still queued after --pool-timeout would be refused although the server was merely busy
with this one message).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from workflowstate import v1 as pb

from ..core import errors
from . import validation

MAX_UPDATES = 1000
"""The most updates in one StepTaskUpdates (as the proto says)."""

Outcome = pb.StepTaskOutcome | None
RunUpdate = Callable[[pb.StepTaskUpdate], Awaitable[Outcome]]


def check(updates: pb.StepTaskUpdates) -> None:
    """Refuse the whole message, before any update runs: too many, one with nothing set, a bad ack.

    (An ack's step_id that is no UUID ends the stream when the ack comes alone; checked here so that
    in bulk, too, it ends the stream before anything of the message ran.)"""
    count = len(updates.updates)
    if count > MAX_UPDATES:
        raise errors.InvalidArgument(f"updates holds {count} updates, more than {MAX_UPDATES}; split it", field="updates", limit=MAX_UPDATES)
    for index, update in enumerate(updates.updates):
        kind = update.WhichOneof("kind")
        if kind is None:
            raise errors.InvalidArgument(f"updates.updates[{index}] sets none of ack, complete, fail", field=f"updates.updates[{index}]")
        if kind == "ack":
            validation.parse_uuid(f"updates.updates[{index}].ack.step_id", update.ack.step_id)


async def run(updates: pb.StepTaskUpdates, run_update: RunUpdate, *, concurrency: int) -> list[Outcome]:
    """Each update's outcome, in the order of the updates."""
    items = list(updates.updates)
    steps = [_step_of(update) for update in items]
    if len(set(steps)) < len(steps) or concurrency <= 1 or len(items) <= 1:
        return [await run_update(update) for update in items]
    outcomes: list[Outcome] = [None] * len(items)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items):
            index = next_index
            next_index += 1
            outcomes[index] = await run_update(items[index])

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
    return outcomes


def _step_of(update: pb.StepTaskUpdate) -> uuid.UUID | str:
    """The step an update names, however its UUID is spelled (as sent when it is none: refused later)."""
    kind = update.WhichOneof("kind")
    assert kind is not None  # check() refused the message otherwise
    step_id = str(getattr(update, kind).step_id)
    try:
        return uuid.UUID(step_id)
    except ValueError:
        return step_id
