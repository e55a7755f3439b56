"""A view of a client whose every write carries one lease's fencing token (``lease.client``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any


@functools.cache
def _is_write(function: Callable[..., Any]) -> bool:
    # A write is any method that can be fenced: the client's methods declare
    # it by taking `fencing_token`, so a new write needs no list kept here.
    return "fencing_token" in inspect.signature(function).parameters


class FencedClient:
    """The methods of ``client``, with ``fencing_token`` and ``lease_key`` filled in on writes.

    Reads and every other attribute pass through unchanged. Arguments the
    caller passes win, so one write can still name another lease. The view
    shares the client's channel: closing either closes both.
    """

    def __init__(self, client: object, fencing_token: int, lease_key: str) -> None:
        self._client = client
        self._fencing_token = fencing_token
        self._lease_key = lease_key

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        function = getattr(attribute, "__func__", None)
        if function is None or not _is_write(function):
            return attribute
        return functools.partial(
            attribute, fencing_token=self._fencing_token, lease_key=self._lease_key
        )

    def __repr__(self) -> str:
        return (
            f"<FencedClient of {self._client!r} "
            f"fencing_token={self._fencing_token} lease_key={self._lease_key!r}>"
        )
