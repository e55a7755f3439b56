"""``@workflow("name")``: a workflow function and the name (and version) its runs are created under."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._context import WorkflowContext

WorkflowFunction = Callable[["WorkflowContext", Any], Awaitable[Any]]
"""``async def f(ctx, input)``: the run's input in, the run's output (any JSON value) out."""


@dataclass(frozen=True)
class Workflow:
    """A workflow an engine can drive: what ``@workflow`` returns."""

    name: str
    """The runs' workflow name (``Run.workflow``)."""

    version: str
    """Stored as the run's ``graph_hash``: an engine drives a run only with the function of its version."""

    function: WorkflowFunction
    """The workflow's code, replayed from the run's history each time an engine drives the run."""

    async def __call__(self, ctx: WorkflowContext, input: Any) -> Any:
        return await self.function(ctx, input)


def workflow(name: str, *, version: str = "") -> Callable[[WorkflowFunction], Workflow]:
    """Make ``async def f(ctx, input)`` a workflow named ``name``::

        @workflow("orders.fulfil")
        async def fulfil(ctx: WorkflowContext, order: dict) -> dict:
            reservation = await ctx.step("reserve", reserve_stock, order)
            ...

    ``version`` names this code: a run is created with the version of the function that starts
    it and is only ever driven by that version's function. Changing the steps of a workflow that
    has running runs? Register the new code under a new version next to the old one (the way out
    of a determinism failure; see the README).
    """
    if not name:
        raise ValueError("a workflow needs a name")

    def register(function: WorkflowFunction) -> Workflow:
        return Workflow(name, version, function)

    return register


class Registry:
    """The workflows one engine drives, by name and version."""

    def __init__(self, workflows: Iterable[Workflow]) -> None:
        self._by_key: dict[tuple[str, str], Workflow] = {}
        for each in workflows:
            key = (each.name, each.version)
            if key in self._by_key:
                raise ValueError(f"workflow {each.name!r} version {each.version!r} is registered twice")
            self._by_key[key] = each
        if not self._by_key:
            raise ValueError("an engine needs at least one workflow")

    @property
    def names(self) -> frozenset[str]:
        """The workflow names, whatever their versions."""
        return frozenset(name for name, _ in self._by_key)

    def items(self) -> list[tuple[str, Workflow]]:
        """(name, workflow) for every registered version."""
        return [(name, each) for (name, _), each in self._by_key.items()]

    def get(self, name: str, version: str | None) -> Workflow | None:
        """The function for a run of ``name`` created under ``version`` (``None`` and ``""`` are the same)."""
        return self._by_key.get((name, version or ""))
