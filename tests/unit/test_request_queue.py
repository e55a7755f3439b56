"""The request side of a client stream (client/_request_queue.py): the merged variants hand gRPC
everything queued by the time it asks, through the merge, and stop at None."""

from __future__ import annotations

import asyncio
import queue

from workflowstate.client._request_queue import until_none_merged, until_none_merged_async


def pair_up(messages: list[str]) -> list[str]:
    return ["+".join(messages)]


def test_messages_queued_together_are_merged_and_none_ends() -> None:
    requests: queue.Queue[str | None] = queue.Queue()
    for message in ("a", "b", "c", None, "never"):
        requests.put(message)
    assert list(until_none_merged(requests, pair_up)) == ["a+b+c"]


def test_a_message_queued_alone_is_handed_over_at_once() -> None:
    requests: queue.Queue[str | None] = queue.Queue()
    requests.put("a")
    sent = until_none_merged(requests, pair_up)
    assert next(sent) == "a", "nothing waits for company"
    requests.put("b")
    requests.put("c")
    assert next(sent) == "b+c"


async def test_the_async_variant_merges_what_one_loop_turn_queued() -> None:
    requests: asyncio.Queue[str | None] = asyncio.Queue()
    sent = until_none_merged_async(requests, pair_up)
    requests.put_nowait("a")
    assert await anext(sent) == "a"
    for message in ("b", "c", None):
        requests.put_nowait(message)
    assert [message async for message in sent] == ["b+c"]
