"""Hypothesis strategies that build any protobuf request from its descriptor, edge cases first.

Nothing here knows an RPC: a field's type (and, for strings, its name: `*_json` holds JSON text,
`*_id` an identifier) decides what it gets. Each kind mixes small random values with the values
that break servers: NUL and other odd characters (protobuf strings are UTF-8, so no lone
surrogates), right-to-left marks, emoji, text over the payload limit and over gRPC's message
limit; JSON nested past any parser's depth, numbers no float holds (1e999999), -0, huge integers;
integers at their type's limits; timestamps and durations at and past the limits of their types;
unknown enum numbers; repeated fields with thousands of entries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32, FieldDescriptor.TYPE_SINT32: INT32, FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64, FieldDescriptor.TYPE_SINT64: INT64, FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32, FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64, FieldDescriptor.TYPE_FIXED64: UINT64,
}  # fmt: skip

# The bounds of google.protobuf.Timestamp (0001-01-01 to 9999-12-31) and Duration (±10,000 years).
TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
DURATION_SECONDS = 315_576_000_000
_TIME_LIMITS = {
    "google.protobuf.Timestamp": TIMESTAMP_SECONDS,
    "google.protobuf.Duration": (-DURATION_SECONDS, DURATION_SECONDS),
}
MAX_DEPTH = 4  # nested messages deeper than this stay unset; Batch holds requests that hold messages
OVERSIZED_REPEATS = 5_000

# Printable characters of every plane but the surrogates protobuf cannot carry.
_CHARACTERS = st.characters(codec="utf-8")

_ODD_TEXT = [
    "", " ", "\x00", "a\x00b", "\t\n\r", "\u202eevil\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd", "\ufeff",
    "\uffff", "\U0010ffff", "e\u0301", "\U0001f469\u200d\U0001f469\u200d\U0001f467", "null", "None",
    "'; DROP TABLE runs; --", "%s%s%n", "{}", "../../etc/passwd", "* * * * *", "0 0 31 2 *", "@reboot",
    "61 25 * * *", "UTC", "Europe/Helsinki", "Not/AZone", "posixrules", "=" * 3, "w" * 256, "w" * 257,
]  # fmt: skip

_ODD_JSON = [
    "", "null", "{}", "[]", "-0", "-0.0", "0e0", "1e999999", "-1e999999", "1e-999999", "1e20000",
    '{"x": 1e20000}', "1e131071", "[1e131071, 1e131071, 1e131071]", "[1e308, -1e308, 5e-324]", "123456789012345678901234567890123456789",
    "-" + "9" * 5000, "0." + "0" * 4000 + "1", '"\\u0000"', '{"\\u0000": 1}', '"\\ud800"',
    '"\\ud83d\\ude00"', '{"a": 1, "a": 2}', "NaN", "Infinity", '{"a": ', "1 2", "\ufeff{}", '"\x00"',
    '"\u202e\U0001f600"', "[" * 100 + "]" * 100, "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000,
    json.dumps({f"k{i}": i for i in range(2000)}), json.dumps(["x" * 10] * 3000),
]  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    """The limits the server was started with, so oversized values can be just past each."""

    payload_limit: int
    message_limit: int

    def oversized_text(self) -> list[str]:
        over_payload = self.payload_limit + 1
        return [
            "x" * over_payload,
            "\u20ac" * (over_payload // 3 + 1),  # under the limit in characters, over it in bytes
            "\U0001f600" * (self.payload_limit // 4),  # four bytes each: at the limit
            "y" * (self.message_limit + 1),  # past what gRPC accepts in one message
        ]

    def oversized_json(self) -> list[str]:
        filler = "x" * (self.payload_limit - 2)
        # The last is within the limit as sent, and sixty times larger once its numbers are written out.
        return [json.dumps(filler), json.dumps(filler + "xx"), "[" + ",".join(["1e300"] * (self.payload_limit // 6)) + "]"]


def _known_ids(known: Sequence[str]) -> list[str]:
    sample = str(uuid.UUID(int=0x1234))
    return [
        *known, str(uuid.UUID(int=0)), sample.upper(), "{" + sample + "}", "urn:uuid:" + sample, sample.replace("-", ""),
        sample + "0", sample[:-1], "not-a-uuid", sample + "\x00", "1", "-1", "0" * 300,
    ]  # fmt: skip


class Generated:
    """A generated request; its repr is short, so a failure report stays readable (a plain class:
    Hypothesis prints a dataclass field by field, whole)."""

    def __init__(self, message: Message) -> None:
        self.message = message

    def __repr__(self) -> str:
        return describe(self.message)


@dataclass
class MessageStrategies:
    """Strategies for the messages of a server started with `sizes`, aware of some existing ids."""

    sizes: Sizes
    known_ids: Sequence[str] = ()
    known_names: Sequence[str] = ()

    def request(self, descriptor: Descriptor) -> st.SearchStrategy[Generated]:
        return self._message(descriptor, depth=0, small=False).map(Generated)

    def sweep(self, descriptor: Descriptor, base: dict[str, object], *, nested: bool = True) -> list[Generated]:
        """Each odd value of each field in turn (and of the fields of a message field, one level
        down), the other fields as in `base`.

        Random draws reach a given edge case of a given field only now and then; this reaches
        every one, on a request whose ids name real records, so the field's handler sees it.
        """
        requests = []
        for field in descriptor.fields:
            if field.is_repeated:
                continue
            if field.type == FieldDescriptor.TYPE_STRING and field.name.endswith("_json"):
                values: list[object] = [*_ODD_JSON, *self.sizes.oversized_json()]
            elif field.type == FieldDescriptor.TYPE_STRING:
                values = ["\x00", "\u202e\U0001f600", *self.sizes.oversized_text()]
            elif field.message_type is not None and field.message_type.full_name in _TIME_LIMITS:
                cls = GetMessageClass(field.message_type)
                low, high = _TIME_LIMITS[field.message_type.full_name]
                values = [cls(seconds=s, nanos=n) for s, n in ((low - 1, 0), (high + 1, 0), (INT64[1], 0), (0, -1), (0, 10**9))]
            elif field.message_type is not None and nested:
                values = [inner.message for inner in self.sweep(field.message_type, {}, nested=False)]
            else:
                continue
            requests += [Generated(_build(descriptor, {**base, field.name: value})) for value in values]
        return requests

    def _message(self, descriptor: Descriptor, *, depth: int, small: bool) -> st.SearchStrategy[Message]:
        fields = {
            field.name: st.none() | self._field(field, depth=depth, small=small)
            for field in descriptor.fields
            if depth < MAX_DEPTH or field.type != FieldDescriptor.TYPE_MESSAGE
        }
        return st.fixed_dictionaries(fields).map(lambda values: _build(descriptor, values))

    def _field(self, field: FieldDescriptor, *, depth: int, small: bool) -> st.SearchStrategy[object]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            return st.dictionaries(self._single(key, depth=depth + 1, small=True), self._single(value, depth=depth + 1, small=small), max_size=3)
        single = self._single(field, depth=depth, small=small)
        if not field.is_repeated:
            return single
        few = st.lists(single, max_size=3)
        if small:
            return few
        # Thousands of one small entry: bounds on counts, not only on sizes.
        many = self._single(field, depth=depth, small=True).map(lambda value: [value] * OVERSIZED_REPEATS)
        return st.one_of(few, many)

    def _single(self, field: FieldDescriptor, *, depth: int, small: bool) -> st.SearchStrategy[object]:
        kind = field.type
        if kind == FieldDescriptor.TYPE_MESSAGE:
            full_name = field.message_type.full_name
            if full_name in _TIME_LIMITS:
                return self._time(*_TIME_LIMITS[full_name], field)
            return self._message(field.message_type, depth=depth + 1, small=small)
        if kind == FieldDescriptor.TYPE_STRING:
            return self._string(field.name, small=small)
        if kind == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64) | st.sampled_from([b"", b"\x00" * 64, b"\xff" * (self.sizes.payload_limit + 1)])
        if kind == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [value.number for value in field.enum_type.values]
            return st.sampled_from(known) | st.sampled_from([-1, max(known) + 1, 99, INT32[0], INT32[1]])
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            width = 32 if kind == FieldDescriptor.TYPE_FLOAT else 64
            odd = [0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e-300, 3.4e38, -1.0]
            return st.floats(width=width, allow_nan=True, allow_infinity=True) | st.sampled_from(odd)
        low, high = _INT_RANGES[kind]
        odd = sorted({low, high, low + 1, high - 1, 0, 1, -1 if low < 0 else 2, 2**31 if high > 2**31 else 7})
        return st.integers(low, high) | st.sampled_from(odd) | st.integers(-5, 100).filter(lambda n: low <= n <= high)

    def _string(self, name: str, *, small: bool) -> st.SearchStrategy[str]:
        if name.endswith("_json"):
            values = _ODD_JSON + ([] if small else self.sizes.oversized_json())
            json_values = st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(_CHARACTERS, max_size=20),
                lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_CHARACTERS, max_size=8), inner, max_size=4),
                max_leaves=12,
            )  # fmt: skip
            return st.sampled_from(values) | json_values.map(json.dumps)
        values = list(_ODD_TEXT)
        if name.endswith("_id") or name == "page_token":
            values += _known_ids(self.known_ids)
        if not small:
            values += self.sizes.oversized_text()
        # Real ids and names as often as odd values, so handlers are reached past their NOT_FOUND.
        real = st.sampled_from([*self.known_ids, *self.known_names]) if self.known_ids or self.known_names else st.nothing()
        return st.sampled_from(values) | real | st.text(_CHARACTERS, max_size=40) | st.uuids().map(str)

    def _time(self, low: int, high: int, field: FieldDescriptor) -> st.SearchStrategy[Message]:
        seconds = st.sampled_from([low, high, low - 1, high + 1, 0, -1, 1, INT64[0], INT64[1]]) | st.integers(low, high)
        nanos = st.sampled_from([0, 999_999_999, -999_999_999, 1_000_000_000, -1, INT32[0], INT32[1]]) | st.integers(0, 999_999_999)
        cls = GetMessageClass(field.message_type)
        return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _build(descriptor: Descriptor, values: dict[str, object]) -> Message:
    message = GetMessageClass(descriptor)()
    for name, value in values.items():
        if value is None:
            continue
        field = descriptor.fields_by_name[name]
        target = getattr(message, name) if field.is_repeated or field.type == FieldDescriptor.TYPE_MESSAGE else None
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():  # type: ignore[attr-defined]
                if isinstance(item, Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated and field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:  # type: ignore[attr-defined]
                target.add().CopyFrom(item)
        elif field.is_repeated:
            target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


def describe(message: Message, limit: int = 60) -> str:
    """A one-line account of a request with long values cut, for failure messages."""

    def value_text(value: object) -> str:
        if isinstance(value, Message):
            return describe(value, limit)
        text = repr(value)
        return text if len(text) <= limit else f"<{len(text)} chars: {text[:limit]}...>"

    parts = []
    for field, value in message.ListFields():
        if field.is_repeated:
            items = list(value)
            shown = ", ".join(value_text(item) for item in items[:3])
            parts.append(f"{field.name}=[{shown}{f', ... {len(items)} in all' if len(items) > 3 else ''}]")
        else:
            parts.append(f"{field.name}={value_text(value)}")
    return f"{message.DESCRIPTOR.name}({', '.join(parts)})"
