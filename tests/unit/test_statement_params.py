"""A statement's typed input becomes its parameters by its fields alone (server/db/params.py): a
field is the placeholder of its name unless its metadata names another, spreads a nested
dataclass, or joins a list for a set-based statement; the class's CONSTANTS are added as they are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from workflowstate.server.db.params import JOINED, array_params, named, params_of, spread


@dataclass(frozen=True)
class Limits:
    retries: int | None = None
    priority: int | None = None


@dataclass(frozen=True)
class Move:
    step_name: str
    data_json: str = field(metadata=named("data"))
    from_statuses: tuple[str, ...] = field(metadata=JOINED)
    limits: Limits = field(default=Limits(), metadata=spread("opt_"))

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": ["running"]}


def test_one_statement_takes_each_field_under_its_placeholder_and_lists_as_arrays() -> None:
    assert params_of(Move("a", "{}", ("pending", "scheduled"), Limits(retries=2))) == {
        "step_name": "a",
        "data": "{}",
        "from_statuses": ["pending", "scheduled"],
        "opt_retries": 2,
        "opt_priority": None,
        "open_run_statuses": ["running"],
    }


def test_a_set_based_statement_takes_one_array_per_field_in_the_inputs_order_and_the_store_s_bound_values() -> None:
    moves = [Move("a", "1", ("pending",)), Move("b", "2", ("pending", "scheduled"), Limits(priority=5))]
    assert array_params(Move, moves, channel="c") == {
        "step_name": ["a", "b"],
        "data": ["1", "2"],
        "from_statuses": ["pending", "pending,scheduled"],
        "opt_retries": [None, None],
        "opt_priority": [None, 5],
        "open_run_statuses": ["running"],
        "channel": "c",
    }
