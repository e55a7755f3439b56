"""ListRuns' page tokens: opaque to the caller, bound to the query that issued them (AIP-158).

A token carries the position of the last run of its page (its create_time to the microsecond, as
PostgreSQL stores it, and its run_id) and a digest of the query: the filter and the order. A token
sent with another filter or order is refused, naming page_token: its position means nothing there.
page_size and view are not part of the query, so they may change from page to page.

Not signed: a forged token can only name a position to start from, which any caller may reach by
paging anyway; the digest is there to catch mistakes, not attacks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone

from ..core.errors import InvalidArgument
from ..state.catalog import RunFilter, RunPosition

_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_BAD = "page_token is not a page token of this server's ListRuns; send the next_page_token of the previous page, or none"


def query_digest(runs: RunFilter, newest_first: bool) -> str:
    """A short digest of what the pages are a walk over (the filter and the order)."""

    def instant(value: datetime | None) -> int | None:
        return None if value is None else _micros(value)

    canonical = [
        runs.workflow,
        sorted(status.value for status in runs.statuses),
        instant(runs.created_after),
        instant(runs.created_before),
        instant(runs.updated_after),
        instant(runs.updated_before),
        newest_first,
    ]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()[:16]


def encode(position: RunPosition, digest: str) -> str:
    body = {"v": _VERSION, "q": digest, "t": _micros(position.create_time), "id": str(position.run_id)}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str, digest: str) -> RunPosition | None:
    """The position a token names (None for no token); InvalidArgument naming page_token otherwise."""
    if not token:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise ValueError("unknown version")
        position = RunPosition(_EPOCH + timedelta(microseconds=int(body["t"])), uuid.UUID(str(body["id"])))
        issued_for = str(body["q"])
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(_BAD) from None
    if issued_for != digest:
        raise InvalidArgument(
            "page_token was issued for another query: send it with the same filter and order_by as the request "
            "that returned it, or start again without a page_token"
        )
    return position


def _micros(value: datetime) -> int:
    since = value - _EPOCH
    return (since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds


__all__ = ["decode", "encode", "query_digest"]
