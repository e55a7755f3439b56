"""Check request fields before anything reaches the database.

Every refusal is an InvalidArgument that names the field and says what is wrong, so a caller
never sees a database error for its own input. The JSON rules mirror what PostgreSQL's jsonb
accepts, and its limits apply to the JSON as jsonb stores it (stored_json.py), which is what every
read returns.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from ..core.errors import InvalidArgument
from .stored_json import StoredNumbers, may_grow, stored_size

MAX_NAME_LENGTH = 256


def parse_uuid(field: str, value: str) -> uuid.UUID:
    """A UUID field; the canonical text form and the other forms Python reads are accepted."""
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} is not a valid UUID: {value[:64]!r}", field=field) from None


def check_name(field: str, value: str, *, required: bool = True, max_length: int = MAX_NAME_LENGTH) -> str:
    """A name: non-empty (when required), at most max_length characters, no NUL."""
    if not value:
        if required:
            raise InvalidArgument(f"{field} is required", field=field)
        return value
    if len(value) > max_length:
        raise InvalidArgument(
            f"{field} is {len(value)} characters long; the limit is {max_length}", field=field, limit=max_length
        )
    if "\x00" in value:
        raise InvalidArgument(f"{field} must not contain the NUL character", field=field)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_strings(value: Any) -> None:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot hold lone surrogates: refuse both."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("contains \\u0000, which PostgreSQL cannot store")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("contains a lone UTF-16 surrogate escape") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def check_json(field: str, text: str, *, max_bytes: int) -> str:
    """A JSON text field; returns the text to store. Empty text stands for JSON null.

    Refused: text that is not JSON or that jsonb cannot store, a number past the bounds of
    stored_json.py, and JSON whose stored form (which every read returns) is over max_bytes.
    """
    if not text:
        return "null"
    # jsonb adds a space after each ',' and ':' and drops whitespace; strings never grow.
    separators = text.count(",") + text.count(":")
    # len(text) counts characters; a character is 1 to 4 bytes, so encode only near the limit.
    sent_bytes = len(text) * 4
    if sent_bytes + separators > max_bytes:
        sent_bytes = len(text.encode("utf-8"))
        if sent_bytes > max_bytes:
            raise InvalidArgument(f"{field} is larger than the limit of {max_bytes} bytes", field=field, limit=max_bytes)
    bound = sent_bytes + separators
    # Read every number only when one may grow or pass a bound, or the stored size must be measured.
    numbers = StoredNumbers(field) if bound > max_bytes or may_grow(text) else None
    read_number = numbers.read if numbers else None  # None: json's own parsing of numbers
    try:
        parsed = json.loads(text, parse_constant=_reject_constant, parse_int=read_number, parse_float=read_number)
        # Escapes are the only way NUL or a lone surrogate can enter: skip the walk without them.
        if "\\u" in text:
            _check_strings(parsed)
    except (ValueError, RecursionError) as err:
        raise InvalidArgument(f"{field} is not valid JSON: {err}", field=field) from None
    if numbers and bound + numbers.stored_length - numbers.sent_length > max_bytes:
        size = stored_size(parsed, numbers)
        if size > max_bytes:
            raise InvalidArgument(
                f"{field} is larger than the limit of {max_bytes} bytes as PostgreSQL stores it: {size} bytes "
                "(it writes numbers without an exponent, and a space after each ',' and ':')",
                field=field, limit=max_bytes,
            )
    return text


def check_failure(field: str, message: str, stack: str, code: str, *, max_bytes: int) -> None:
    """An error description: a message is required; the whole must fit the payload limit."""
    if not message:
        raise InvalidArgument(f"{field}.message is required", field=f"{field}.message")
    for part, text in (("message", message), ("stack", stack), ("code", code)):
        if "\x00" in text:
            raise InvalidArgument(f"{field}.{part} must not contain the NUL character", field=f"{field}.{part}")
    size = len(message) + len(stack) + len(code)
    if size * 4 > max_bytes and sum(len(t.encode("utf-8")) for t in (message, stack, code)) > max_bytes:
        raise InvalidArgument(f"{field} is larger than the limit of {max_bytes} bytes", field=field, limit=max_bytes)


def check_duration(field: str, value: timedelta | None) -> timedelta | None:
    if value is not None and value < timedelta(0):
        raise InvalidArgument(f"{field} must not be negative, got {value}", field=field)
    return value


def check_event_id(field: str, value: int) -> int:
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative, got {value}", field=field)
    return value
