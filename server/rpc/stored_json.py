"""How PostgreSQL's jsonb will store a JSON text, measured without storing it.

jsonb keeps each number as a numeric and writes it back in plain notation, never with an exponent:
the literal 1e20000 (7 bytes) is read back as a 1 followed by 20000 zeros, 1e-400 as 0.000…1. It also
drops whitespace and writes a space after each ',' and ':'. A limit on the text as sent would let a
few bytes store (and every later read load) megabytes, so the limits apply to the stored form: each
number is bounded as stored, and the payload limit counts the whole stored text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidArgument

MAX_INTEGER_DIGITS = 308
"""The most digits a number may have before its decimal point, as stored: every number below 1e308
fits a double (which reaches 1.8e308), the widest number most JSON readers have."""

MAX_FRACTION_DIGITS = 340
"""The most digits a number may have after its decimal point, as stored: the smallest double
(5e-324) needs 324 places, and a few more significant digits fit."""

MAX_EXPONENT_DIGITS = 9
"""The most digits of a number's exponent: PostgreSQL refuses exponents past about 1e9 even on zero."""

# Only a number with an exponent, or with a long run of digits, can pass a bound or grow when stored.
# may_grow looks for those in the text's "shape": each digit as 0, each e or E as e, all else a space
# (bytes.translate: about 2 ms a MiB, where a regular expression takes 15 to 30). Digits inside
# strings count too; those texts just take the slower, exact way.
_SHAPE = bytes(ord("0") if chr(b).isdigit() and b < 128 else ord("e") if chr(b) in "eE" else ord(" ") for b in range(256))
_LONG_RUN = b"0" * (MAX_INTEGER_DIGITS + 1)

# A number literal this short and without an exponent is stored as written (or shorter: -0 is 0).
_SHORT_PLAIN = 20


@dataclass(frozen=True)
class StoredNumber:
    """A number literal as jsonb writes it back: its digits before and after the decimal point."""

    integer_digits: int
    fraction_digits: int
    negative: bool

    @property
    def length(self) -> int:
        return self.negative + self.integer_digits + (1 + self.fraction_digits if self.fraction_digits else 0)


def stored_number(literal: str) -> StoredNumber | None:
    """How jsonb stores the JSON number `literal`; None when its exponent has more than MAX_EXPONENT_DIGITS digits.

    numeric keeps the literal's digits and its scale (digits after the point, less the exponent, never
    below 0), so trailing zeros stay: 1.000e2 is 100.0, 120e-1 is 12.0. Computed from the text alone,
    without converting: a huge number costs no more than a small one.
    """
    mantissa, _, exponent_text = literal.lower().partition("e")
    if len(exponent_text.lstrip("+-").lstrip("0")) > MAX_EXPONENT_DIGITS:
        return None
    exponent = int(exponent_text) if exponent_text else 0
    negative = mantissa.startswith("-")
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    digits = whole + fraction
    significant = digits.lstrip("0")
    if not significant:  # zero: "0", with its scale; numeric has no negative zero
        return StoredNumber(1, max(0, len(fraction) - exponent), False)
    # Where the decimal point falls, counted from the first significant digit.
    point = len(whole) + exponent - (len(digits) - len(significant))
    return StoredNumber(max(point, 1), max(0, len(fraction) - exponent), negative)


class StoredNumbers:
    """The number hooks of json.loads (parse_int, parse_float) for one field: each literal is checked
    against the bounds and its growth when stored is added up; every number reads as 0, unconverted."""

    def __init__(self, field: str) -> None:
        self._field = field
        self.count = 0
        self.sent_length = 0
        self.stored_length = 0

    def read(self, literal: str) -> int:
        if len(literal) <= _SHORT_PLAIN and "e" not in literal and "E" not in literal:
            # Most numbers: skip the exact reading (a json.loads hook runs per number).
            self.count += 1
            self.sent_length += len(literal)
            self.stored_length += len(literal)
            return 0
        number = stored_number(literal)
        shown = literal if len(literal) <= 40 else literal[:37] + "..."
        if number is None:
            raise InvalidArgument(
                f"{self._field} holds the number {shown}, whose exponent has more than {MAX_EXPONENT_DIGITS} digits; "
                "PostgreSQL cannot store it",
                field=self._field, limit=MAX_EXPONENT_DIGITS,
            )
        if number.integer_digits > MAX_INTEGER_DIGITS:
            raise InvalidArgument(
                f"{self._field} holds the number {shown}, which PostgreSQL would store with {number.integer_digits} digits "
                f"before its decimal point (it writes numbers without an exponent); the limit is {MAX_INTEGER_DIGITS}, "
                "so that every JSON reader can hold the number as a double",
                field=self._field, limit=MAX_INTEGER_DIGITS,
            )
        if number.fraction_digits > MAX_FRACTION_DIGITS:
            raise InvalidArgument(
                f"{self._field} holds the number {shown}, which PostgreSQL would store with {number.fraction_digits} digits "
                f"after its decimal point (it writes numbers without an exponent); the limit is {MAX_FRACTION_DIGITS}",
                field=self._field, limit=MAX_FRACTION_DIGITS,
            )
        self.count += 1
        self.sent_length += len(literal)
        self.stored_length += number.length
        return 0


def may_grow(text: str) -> bool:
    """Whether a number of `text` might pass a bound or be stored longer than written (cheap, may say yes wrongly)."""
    shape = text.encode("utf-8", "surrogatepass").translate(_SHAPE)
    return b"0e" in shape or _LONG_RUN in shape


def stored_size(parsed: Any, numbers: StoredNumbers) -> int:
    """The bytes of jsonb's text of `parsed` (read with `numbers`' hooks, so each number is a 0).

    json.dumps with these separators writes what jsonb writes, but for the numbers, each a "0" here:
    those are counted as stored instead. Where an object repeats a key, jsonb keeps one of them but
    the numbers of both are counted: never less than stored.
    """
    text = json.dumps(parsed, ensure_ascii=False, separators=(", ", ": "))
    return len(text.encode("utf-8")) - numbers.count + numbers.stored_length
