"""Every reply has a bound: the most bytes one unary reply may carry (--max-reply-bytes).

A read token could otherwise make the server build a reply of any size (a Batch of GetRun on one
large run, a full-view page of large runs) and hold it, and its serialized copy, in memory. One
bound for every reply, enforced here, in three ways:

- a page (ListRuns, ListLeases, ListSchedules) ends early, with its next_page_token, once the next
  item would pass the bound; it always holds at least one item, so a caller walking the pages
  always moves on (one item never passes the bound: see `max_item_bytes`);
- any other reply that would pass it is RESOURCE_EXHAUSTED naming the bound and what to ask for
  instead (only reads can grow so: a write's reply is one item);
- a Batch stops adding results at the bound: the operations past it get a RESOURCE_EXHAUSTED
  result without being run (batch.py).

gRPC's send limit is set from the bound (`send_limit`), so no reply can pass it unnoticed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from ..core import errors
from .runs import MAX_PLANNED_STEPS
from .validation import MAX_NAME_LENGTH

# What one item (a run, a step, an attempt, a task, a schedule) may carry, at the payload limit:
# a run holds the most payload fields: input, output, metadata and its error (whose message,
# stack and code share one limit).
PAYLOAD_FIELDS_PER_ITEM = 4
# JSON comes back as PostgreSQL renders its jsonb, which adds a space after each ',' and ':'
# (`[0,0]` becomes `[0, 0]`): at most 1.5 times the text sent; 2 leaves room.
JSON_GROWTH = 2
# A run's planned steps: each a step_name and a display_name of MAX_NAME_LENGTH characters (4
# bytes of UTF-8 each at most) and the framing of the three fields.
PLANNED_STEPS_BYTES = MAX_PLANNED_STEPS * (2 * 4 * MAX_NAME_LENGTH + 16)
# Everything else of one item (ids, names, statuses, timestamps, options) and of a reply's envelope.
FIXED_BYTES = 64 * 1024

# The default bound: a few large runs per reply, and room for the results of a Batch of 1000
# small operations; at the default payload limit (1 MiB), one maximal item needs about 10 MiB.
DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024

_Item = TypeVar("_Item", bound=Message)
_Row = TypeVar("_Row")


def max_item_bytes(max_payload_bytes: int) -> int:
    """The most bytes one run, step, attempt, task or schedule may take in a reply: the least the
    reply bound may be, so that every single item can be answered."""
    return PAYLOAD_FIELDS_PER_ITEM * JSON_GROWTH * max_payload_bytes + PLANNED_STEPS_BYTES + FIXED_BYTES


# Above the bound, gRPC's send limit leaves room for the envelope and for the error results of a
# Batch of a thousand operations whose first one took the whole bound.
SEND_LIMIT_SLACK = 1024 * 1024


def send_limit(max_reply_bytes: int) -> int:
    """gRPC's grpc.max_send_message_length for a server whose replies stay within max_reply_bytes."""
    return max_reply_bytes + SEND_LIMIT_SLACK


def item_bytes(message: Message) -> int:
    """What one element of a repeated field adds to its reply: its bytes, its tag and its length."""
    size = message.ByteSize()
    return size + 1 + _varint_bytes(size)


def _varint_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


class ReplyBound:
    """The bound of this server's replies, and the answers a caller gets when it is reached."""

    def __init__(self, max_bytes: int, *, max_payload_bytes: int) -> None:
        if max_bytes < max_item_bytes(max_payload_bytes):
            raise ValueError(
                f"the reply bound ({max_bytes} bytes) is smaller than one item at the payload limit "
                f"({max_item_bytes(max_payload_bytes)} bytes)"
            )
        self.max_bytes = max_bytes
        # What a write's reply may need at most: it carries one item.
        self.item_bytes = max_item_bytes(max_payload_bytes)
        self._max_payload = max_payload_bytes

    def row_bytes(self, payload_fields: int) -> int:
        """The most one listed item with `payload_fields` payload fields may take in a reply."""
        return payload_fields * JSON_GROWTH * self._max_payload + FIXED_BYTES

    def check(self, rpc: str, reply: Message) -> None:
        """RESOURCE_EXHAUSTED, naming the bound and what to ask instead, when `reply` passes it."""
        size = reply.ByteSize()
        if size > self.max_bytes:
            raise self.too_large(rpc, f"would be {size} bytes")

    def too_large(self, rpc: str, how: str) -> errors.ReplyTooLarge:
        return errors.ReplyTooLarge(
            f"the reply of {rpc} {how}, over this server's reply bound of {self.max_bytes} bytes (--max-reply-bytes); "
            f"{INSTEAD.get(rpc, 'ask for less in one call')}; nothing was written"
        )

    def batch_refusal(self, rpc: str, *, ran: bool) -> str:
        """The message of a Batch operation past the bound: not run, or (a read) its result left out."""
        what = f"this {rpc} was not run" if not ran else f"the result of this {rpc} was left out (it wrote nothing)"
        return (
            f"{what}: the reply of this Batch reached this server's reply bound of {self.max_bytes} bytes (--max-reply-bytes); "
            "send it in another call"
        )

    async def page(
        self,
        fetch: Callable[[Any, int], Awaitable[Sequence[_Row]]],
        position_of: Callable[[_Row], Any],
        to_proto: Callable[[_Row], _Item],
        *,
        after: Any,
        page_size: int,
        row_bytes: int,
    ) -> tuple[list[_Item], Any]:
        """One page of a List RPC within the bound: its items, and the position of its last one
        when more follow (None on the last page).

        `fetch(after, limit)` reads up to `limit` rows past `after`; `row_bytes` is the most one row
        may take. Rows are read in chunks that fit in what is left of the bound at that size, so the
        server never holds much more than a reply's worth of rows either. The page ends early, before
        the item that would pass the bound, but never empty: one item always fits.
        """
        items: list[_Item] = []
        budget = self.max_bytes - FIXED_BYTES  # the token and the envelope
        last: Any = None
        while True:
            # One more than the page: whether it exists says whether there is a next page.
            wanted = page_size + 1 - len(items)
            limit = min(wanted, max(1, budget // row_bytes))
            rows = await fetch(after, limit)
            for row in rows:
                if len(items) == page_size:
                    return items, position_of(last)
                item = to_proto(row)
                size = item_bytes(item)
                if size > budget and items:
                    return items, position_of(last)  # ended early: the next page starts at this row
                budget -= size
                items.append(item)
                last = row
            if len(rows) < limit:
                return items, None
            after = position_of(rows[-1])


# What a caller can ask for instead of a reply that passed the bound, by RPC.
INSTEAD = {
    "GetRunHistory": "read the run's steps one at a time with GetStepState, or raise --max-reply-bytes",
    "ListSteps": "read the run's steps one at a time with GetStepState, or raise --max-reply-bytes",
    "ListWorkers": "raise --max-reply-bytes",
    "GetRunState": "raise --max-reply-bytes",
}


__all__ = ["DEFAULT_MAX_REPLY_BYTES", "ReplyBound", "item_bytes", "max_item_bytes", "send_limit"]
