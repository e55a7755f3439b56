"""Dispatch defaults per rpc name (defaults.sql), stored in the database so every server's claims
and inserts read the same ones in their own statements; nothing of them is cached in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..core import errors
from ..db.database import Database, Row
from ..state.options import StepOptions


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
        self._sql = database.statements(__package__, "defaults.sql")

    async def set(self, defaults: DispatchDefaults) -> Row:
        """Create or replace the rpc name's defaults; return them as stored."""
        params = {
            "rpc_name": defaults.rpc_name,
            **defaults.options.params(),
            "concurrency_limit": defaults.concurrency_limit,
            "rate_limit": defaults.rate_limit,
            "rate_period": defaults.rate_period,
        }
        row = await self._sql.fetch_one("set_defaults", params)
        assert row is not None  # an upsert returns its row
        return row

    async def list(self) -> list[Row]:
        return await self._sql.fetch_all("list_defaults", {})

    async def delete(self, rpc_name: str) -> None:
        """NotFound when the rpc name has no defaults."""
        if await self._sql.fetch_one("delete_defaults", {"rpc_name": rpc_name}) is None:
            raise errors.NotFound(f"rpc name {rpc_name!r} has no dispatch defaults")


__all__ = ["DefaultsStore", "DispatchDefaults"]
