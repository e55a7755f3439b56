"""Typed statement inputs: a frozen dataclass per statement, whose fields are the statement's parameters.

Each field is the `%(name)s` placeholder of its name, so adding a parameter is adding a field. A
field may say otherwise in its metadata (`field(metadata=...)`, which type checkers understand):
`named("input")`, another placeholder name (`input_json` fills `%(input)s`); `spread("opt_")`, a
nested dataclass spread into prefixed parameters (StepOptions as `opt_<option>`); `JOINED`, a list
of statuses carried as comma-joined text in a set-based statement's arrays (PostgreSQL arrays of
arrays must be rectangular; statements split the text again). What is the same for every input of
a statement (the open run statuses, a target status) is the input class's `CONSTANTS`.

`params_of(item)` makes one statement's parameters; `array_params(cls, items)` a set-based
statement's, one array per parameter in the inputs' order (the ordinal of each result row).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, get_type_hints

_NAME = "workflowstate.param"
_PREFIX = "workflowstate.prefix"
_JOINED = "workflowstate.joined"


def named(name: str) -> Mapping[str, object]:
    """A field's metadata: it fills the placeholder `name`, not its own name's."""
    return {_NAME: name}


def spread(prefix: str) -> Mapping[str, object]:
    """A field's metadata: its value, a dataclass, fills a parameter per field, each named prefix + field."""
    return {_PREFIX: prefix}


# A field's metadata: its list of text goes to a set-based statement as one comma-joined text per input.
JOINED: Mapping[str, object] = {_JOINED: True}


class StatementInput(Protocol):
    """What the input classes are: dataclasses (CONSTANTS optional)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]


class GroupInput(StatementInput, Protocol):
    """An input of a set-based statement, which also says which row it writes and its bytes."""

    @property
    def key(self) -> Hashable:
        """The row it writes: one operation per row in a group."""

    @property
    def size(self) -> int:
        """Its payload's bytes, for a group's byte bound."""


@dataclasses.dataclass(frozen=True)
class NoInput:
    """The input of a statement without parameters."""


NO_INPUT = NoInput()


def _constants(cls: type) -> Mapping[str, Any]:
    constants: Mapping[str, Any] = getattr(cls, "CONSTANTS", {})
    return constants


@functools.cache
def _columns(cls: type) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    """Each parameter of the input class: its placeholder name, the attribute path to its value,
    and whether it is joined in arrays (read once per class: statements run it on every call)."""
    columns: list[tuple[str, tuple[str, ...], bool]] = []
    for field in dataclasses.fields(cls):
        prefix = field.metadata.get(_PREFIX)
        if prefix is not None:
            nested = get_type_hints(cls)[field.name]
            columns += [(prefix + name, (field.name, *path), joined) for name, path, joined in _columns(nested)]
        else:
            columns.append((field.metadata.get(_NAME) or field.name, (field.name,), bool(field.metadata.get(_JOINED))))
    return tuple(columns)


def _value(item: object, path: tuple[str, ...]) -> Any:
    for name in path:
        item = getattr(item, name)
    return item


def params_of(item: object) -> dict[str, Any]:
    """One statement's parameters: one per field (lists as arrays), and the class's constants."""
    cls: type = type(item)
    values = {name: _value(item, path) for name, path, _ in _columns(cls)}
    return {**{name: list(value) if isinstance(value, tuple) else value for name, value in values.items()}, **_constants(cls)}


def array_params(cls: type, items: Sequence[object], **bound: Any) -> dict[str, Any]:
    """A set-based statement's parameters: one array per field in the items' order, the class's
    constants, and what the store binds for every input (`bound`: its server id, its channel)."""
    arrays: dict[str, Any] = {}
    for name, path, joined in _columns(cls):
        values = [_value(item, path) for item in items]
        arrays[name] = [",".join(value) for value in values] if joined else values
    return {**arrays, **_constants(cls), **bound}


__all__ = ["JOINED", "NO_INPUT", "GroupInput", "NoInput", "StatementInput", "array_params", "named", "params_of", "spread"]
