"""Page tokens of the List RPCs: opaque to the caller, bound to the query that issued them (AIP-158).

A token carries the position of the last item of its page (ListRuns: its create_time to the
microsecond, as PostgreSQL stores it, and its run_id; ListLeases: its key) and a digest of the
query (the filter and the order). A token sent with another query is refused, naming page_token:
its position means nothing there. page_size and view are not part of the query, so they may change
from page to page.

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
from typing import Any

from ..core.errors import InvalidArgument
from ..state.catalog import RunFilter, RunPosition

# The List RPCs' page sizes (as the proto says).
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def page_size(value: int) -> int:
    """A request's page_size: 0 means DEFAULT_PAGE_SIZE; outside 1..MAX_PAGE_SIZE is INVALID_ARGUMENT."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be 1 to {MAX_PAGE_SIZE} (0 for {DEFAULT_PAGE_SIZE}), got {value}", field="page_size", limit=MAX_PAGE_SIZE)
    return value


def digest(rpc: str, *query: Any) -> str:
    """A short digest of what the pages are a walk over (the RPC, its filter and its order)."""
    return hashlib.sha256(json.dumps([rpc, *query], separators=(",", ":")).encode()).hexdigest()[:16]


def encode(position: dict[str, Any], query: str) -> str:
    body = {"v": _VERSION, "q": query, **position}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str, query: str, rpc: str) -> dict[str, Any] | None:
    """The position a token carries (None for no token); InvalidArgument naming page_token otherwise."""
    if not token:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(body, dict) or body.get("v") != _VERSION or not isinstance(body.get("q"), str):
            raise ValueError("not a token")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(f"page_token is not a page token of this server's {rpc}; send the next_page_token of the previous page, or none", field="page_token") from None
    if body["q"] != query:
        raise InvalidArgument(
            "page_token was issued for another query: send it with the same filter and order as the request "
            "that returned it, or start again without a page_token",
            field="page_token",
        )
    return body


# ListRuns


def runs_query(runs: RunFilter, newest_first: bool) -> str:
    def instant(value: datetime | None) -> int | None:
        return None if value is None else _micros(value)

    return digest(
        "ListRuns",
        runs.workflow,
        sorted(status.value for status in runs.statuses),
        instant(runs.created_after),
        instant(runs.created_before),
        instant(runs.updated_after),
        instant(runs.updated_before),
        newest_first,
    )


def encode_run_position(position: RunPosition, query: str) -> str:
    return encode({"t": _micros(position.create_time), "id": str(position.run_id)}, query)


def decode_run_position(token: str, query: str) -> RunPosition | None:
    body = decode(token, query, "ListRuns")
    if body is None:
        return None
    try:
        return RunPosition(_EPOCH + timedelta(microseconds=int(body["t"])), uuid.UUID(str(body["id"])))
    except (ValueError, KeyError, TypeError, OverflowError):
        raise InvalidArgument("page_token is not a page token of this server's ListRuns; send the next_page_token of the previous page, or none", field="page_token") from None


# ListLeases


def leases_query(key_prefix: str) -> str:
    return digest("ListLeases", key_prefix)


def encode_lease_position(key: str, query: str) -> str:
    return encode({"k": key}, query)


def decode_lease_position(token: str, query: str) -> str | None:
    body = decode(token, query, "ListLeases")
    if body is None:
        return None
    if not isinstance(body.get("k"), str):
        raise InvalidArgument("page_token is not a page token of this server's ListLeases; send the next_page_token of the previous page, or none", field="page_token")
    return str(body["k"])


# ListSchedules


SCHEDULES_QUERY = digest("ListSchedules")


def encode_schedule_position(schedule_id: str) -> str:
    return encode({"s": schedule_id}, SCHEDULES_QUERY)


def decode_schedule_position(token: str) -> str:
    """The id after which the page starts ('' for the first page)."""
    body = decode(token, SCHEDULES_QUERY, "ListSchedules")
    if body is None:
        return ""
    if not isinstance(body.get("s"), str):
        raise InvalidArgument("page_token is not a page token of this server's ListSchedules; send the next_page_token of the previous page, or none", field="page_token")
    return str(body["s"])


def _micros(value: datetime) -> int:
    since = value - _EPOCH
    return (since.days * 86400 + since.seconds) * 1_000_000 + since.microseconds


__all__ = [
    "decode_lease_position",
    "decode_schedule_position",
    "encode_schedule_position",
    "decode_run_position",
    "encode_lease_position",
    "encode_run_position",
    "leases_query",
    "page_size",
    "runs_query",
]
