"""What a holder can read about its lease, the same for the sync and the async lease."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Protocol, TypeVar, cast

from ._fenced import FencedClient
from ._lease_protocol import LeaseProtocol
from ._types import LeaseLostReason

class _Flag(Protocol):
    """A threading or an asyncio Event: what publish() sets."""

    def set(self) -> None: ...


def publish(protocol: LeaseProtocol, lost: _Flag, finished: _Flag) -> None:
    """Tell the holder (``lost``) and the releasing stream (``finished``) what the protocol now knows."""
    # Events are set, never cleared, so publishing twice is harmless.
    if protocol.lost_reason is not None:
        lost.set()
    if protocol.finished:
        finished.set()


C = TypeVar("C")
"""The client class the lease was taken with: the sync or the async one."""


class LeaseView(Generic[C]):
    """The read-only face of a held lease and its fenced client; the sync and async leases add the waiting."""

    def __init__(self, protocol: LeaseProtocol, client: C) -> None:
        # Only made once the lease is granted, so the token and expiry exist.
        self._protocol = protocol
        self._client = client

    @property
    def client(self) -> C:
        """The client, with this lease's fencing token and key passed on every write.

        Reads pass through. A write after another holder acquired the key
        raises FailedPrecondition and changes nothing. Not a new channel:
        closing it closes the client.
        """
        # A view with the client's methods, not an instance of its class:
        # typed as the client so callers keep every signature.
        return cast(C, FencedClient(self._client, self.fencing_token, self.key))

    @property
    def key(self) -> str:
        """The key the lease locks, e.g. ``"run:<run_id>"``."""
        return self._protocol.terms.key

    @property
    def holder(self) -> str:
        """The text naming this holder, as GetLease shows it."""
        return self._protocol.terms.holder

    @property
    def fencing_token(self) -> int:
        """This lease's token: higher than any granted on the key before it."""
        return self._protocol.fencing_token

    @property
    def expire_time(self) -> datetime:
        """When the server will let the lease go unless kept alive (UTC); updated by each keepalive.

        For people and logs: it is the server's clock. Whether the lease is
        still held is :attr:`lost`, which does not depend on clocks agreeing.
        """
        expire_time = self._protocol.expire_time
        if expire_time is None:
            raise RuntimeError("the lease has not been granted")
        return expire_time

    @property
    def lost_reason(self) -> LeaseLostReason | None:
        """Why the lease was lost (a ``str``); ``None`` while it is not."""
        return self._protocol.lost_reason

    def __repr__(self) -> str:
        if self.lost_reason is not None:
            state = f"lost={self.lost_reason}"
        else:
            state = "released" if self._protocol.finished else "held"
        return (
            f"<{type(self).__name__} key={self.key!r} fencing_token={self.fencing_token} {state}>"
        )
