"""Login attempts per client address: a token bucket, so a few mistyped tokens pass and guessing does not.

Each attempt takes a token from its address's bucket (taken before the check, so attempts sent at
once cannot all slip through while the first is being checked); a successful login gives it back, so
only failures count. An empty bucket refuses with the seconds until the next token. IPv6 addresses
count per /64, the block one machine is usually given. Behind a reverse proxy every browser has the
proxy's address and shares one bucket: guessing is still bounded, at the price of a mistyping
neighbour (the X-Forwarded-For header is not trusted: anyone can send it).

The buckets are bounded: past the most, the least recently used is forgotten.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    # Whether the refusal of this empty spell was logged already (one line per spell, not per try).
    refusal_logged: bool = False


def client_key(address: str | None) -> str:
    """The bucket an address counts in: the address, or its /64 for IPv6."""
    if not address:
        return "local"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class LoginThrottle:
    """Per client: `burst` attempts at once, then one more every `refill_seconds`."""

    def __init__(self, *, burst: int, refill_seconds: float, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = burst
        self._refill = refill_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self._burst), now)
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.updated) / self._refill)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket

    def take(self, address: str | None) -> float | None:
        """Take an attempt: None when it may go ahead, else the seconds until it may."""
        bucket = self._bucket(client_key(address))
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            bucket.refusal_logged = False
            return None
        return (1.0 - bucket.tokens) * self._refill

    def give_back(self, address: str | None) -> None:
        """The attempt succeeded (or was never judged): it does not count."""
        bucket = self._bucket(client_key(address))
        bucket.tokens = min(float(self._burst), bucket.tokens + 1.0)

    def first_refusal(self, address: str | None) -> bool:
        """Whether this is the first refusal of the address's empty spell (the one worth a log line)."""
        bucket = self._bucket(client_key(address))
        first, bucket.refusal_logged = not bucket.refusal_logged, True
        return first
