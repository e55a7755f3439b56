"""Typed statement inputs: a frozen dataclass per statement, whose fields are the statement's parameters.

Each field is the `%(name)s` placeholder of its name, so adding a parameter is adding a field. A
field may say otherwise with `param(...)`: another placeholder name (`input_json` fills `%(input)s`),
a nested dataclass spread into prefixed parameters (StepOptions as `opt_<option>`), or a list of
statuses carried as comma-joined text in a set-based statement's arrays (PostgreSQL arrays of
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


def param(name: str | None = None, *, default: Any = dataclasses.MISSING, prefix: str | None = None, joined: bool = False) -> Any:
    """A field that fills another placeholder than its name, spreads a nested dataclass under
    `prefix`, or (`joined`) is a list of text carried joined by commas in a set-based statement."""
    metadata = {_NAME: name, _PREFIX: prefix, _JOINED: joined}
    return dataclasses.field(default=default, metadata=metadata)


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
    cls = type(item)
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


def parameter_names(cls: type) -> list[str]:
    """Every placeholder the input class fills, its constants included."""
    return [name for name, _, _ in _columns(cls)] + list(_constants(cls))


__all__ = ["NO_INPUT", "GroupInput", "NoInput", "StatementInput", "array_params", "param", "params_of", "parameter_names"]
