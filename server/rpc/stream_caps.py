"""How many streams one caller may hold open at once (WatchRun, StreamRunEvents, StreamStepTasks, Lease).

Every open stream costs the server for as long as it lasts (a reader of events looks at the
events table at each wake-up, a worker stream polls for tasks), and a client can open them for
nothing: a few hundred idle event readers from one read token were measured to take a server from
1% to a third of a core and slow everyone's calls tenfold. So each caller gets a bound: the
caller is its token (its SHA-256, as the token file keys it) when the server checks tokens, else
the host part of its peer address (every Unix-socket caller, the dashboard's pages included,
is one). A stream over the bound is refused at once with RESOURCE_EXHAUSTED naming the bound and
its flag; the caller's other streams are untouched. A slot is freed however the stream ends: the
client's cancel, an error, the server's shutdown (the servicer's wrapper releases it in a finally).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ..core import errors
from .auth import AUTHORIZATION
from .tokens import token_hash


@dataclass(frozen=True)
class StreamLimits:
    """The bounds; both positive."""

    # Streams one token may hold open (a server with --auth-tokens): a worker fleet shares its token.
    per_token: int = 1000
    # Streams one peer host may hold open (a server without tokens): one machine's processes.
    per_peer_host: int = 200


def peer_host(peer: str) -> str:
    """The host part of a gRPC peer string: 'ipv4:10.0.0.7:5123' -> '10.0.0.7',
    'ipv6:[::1]:5123' -> '::1', 'unix:/path' (or 'unix:') -> 'unix'."""
    kind, _, address = unquote(peer).partition(":")  # gRPC writes '[' and ']' as %5B and %5D
    if kind in ("ipv4", "ipv6"):
        return address.rpartition(":")[0].strip("[]") or address
    return kind  # unix, unix-abstract, ...: one local host


class StreamCaps:
    """The open streams of each caller, counted against the bound of the mode the server runs in."""

    def __init__(self, limits: StreamLimits, *, tokens_checked: bool) -> None:
        self._tokens_checked = tokens_checked
        self._limit = limits.per_token if tokens_checked else limits.per_peer_host
        self._open: Counter[bytes | str] = Counter()

    def _caller(self, context: Any) -> tuple[bytes | str, str]:
        """The caller's key, and how a refusal names it (never the token)."""
        if self._tokens_checked:
            # The interceptor (auth.py) let the call through: exactly one well-formed bearer value.
            value = next(value for key, value in context.invocation_metadata() or () if key == AUTHORIZATION)
            return token_hash(value.partition(" ")[2].strip()), "this token"
        host = peer_host(context.peer() or "")
        return host, f"peer host {host}"

    @contextlib.contextmanager
    def held(self, rpc: str, context: Any) -> Iterator[None]:
        """Hold one of the caller's slots while the block runs; errors.LimitReached when none is free."""
        key, who = self._caller(context)
        if self._open[key] >= self._limit:
            flag = "--max-streams-per-token" if self._tokens_checked else "--max-streams-per-peer"
            raise errors.LimitReached(
                f"{who} has {self._open[key]} streams open, the most this server allows ({flag} {self._limit}); "
                f"close one before opening another {rpc}"
            )
        self._open[key] += 1
        try:
            yield
        finally:
            self._open[key] -= 1
            if not self._open[key]:
                del self._open[key]


__all__ = ["StreamCaps", "StreamLimits", "peer_host"]
