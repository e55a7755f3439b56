"""Dispatch defaults per rpc name (defaults.sql), stored in the database so every server's claims
and inserts read the same ones in their own statements; nothing of them is cached in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..core import errors
from ..db.database import Database
from ..db.params import NO_INPUT, NoInput
from ..state.options import StepOptions
from .inputs import RpcNameInput, SetDefaultsInput
from .rows import DispatchDefaultsRow, RpcNameRow


@dataclass(frozen=True)
class DispatchDefaults:
    """One rpc name's defaults: the options its steps take when they set none, and its limits."""

    rpc_name: str
    options: StepOptions
    concurrency_limit: int | None = None
    rate_limit: int | None = None
    rate_period: timedelta | None = None


class DefaultsStore:
    """The statements of defaults.sql."""

    def __init__(self, database: Database) -> None:
        sql = database.statements(__package__, "defaults.sql")
        self._set = sql.query("set_defaults", SetDefaultsInput, DispatchDefaultsRow)
        self._list = sql.query("list_defaults", NoInput, DispatchDefaultsRow)
        self._delete = sql.query("delete_defaults", RpcNameInput, RpcNameRow)

    async def set(self, defaults: DispatchDefaults) -> DispatchDefaultsRow:
        """Create or replace the rpc name's defaults; return them as stored."""
        item = SetDefaultsInput(defaults.rpc_name, defaults.options, defaults.concurrency_limit, defaults.rate_limit, defaults.rate_period)
        row = await self._set.one(item)
        assert row is not None  # an upsert returns its row
        return row

    async def list(self) -> list[DispatchDefaultsRow]:
        return await self._list.all(NO_INPUT)

    async def delete(self, rpc_name: str) -> None:
        """NotFound when the rpc name has no defaults."""
        if await self._delete.one(RpcNameInput(rpc_name)) is None:
            raise errors.NotFound(f"rpc name {rpc_name!r} has no dispatch defaults")


__all__ = ["DefaultsStore", "DispatchDefaults"]
