"""Retention policies in the database (retention.sql), so every server applies the same ones.

A policy is known by its workflow ('' for every workflow) and its set of finished statuses; the
store keeps the set sorted, an empty one standing for every finished status, so the same pair set
twice is one policy (an upsert that keeps its id).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from ..core import errors
from ..db.database import Database
from ..db.params import NO_INPUT, NoInput
from .inputs import EraseInput, EraseOfWorkflowInput, PolicyIdInput, PolicyInput
from .rows import ErasedRunRow, PolicyIdRow, PolicyRow
from ..state.transitions import TERMINAL_RUN_STATUSES, RunStatus


@dataclass(frozen=True)
class Policy:
    """What a policy erases: runs of `workflow` (None: any) in one of `statuses`, finished `keep` ago."""

    workflow: str | None
    statuses: tuple[RunStatus, ...]
    keep: timedelta

    @classmethod
    def of(cls, row: PolicyRow) -> Policy:
        return cls(row["workflow"] or None, tuple(RunStatus(status) for status in row["statuses"]), row["keep"])


def policy_statuses(statuses: Iterable[RunStatus]) -> list[str]:
    """The stored form of a policy's statuses: sorted, without repeats; every finished status for none.
    ValueError for a status that is not finished (a running run is never erased by retention)."""
    chosen = set(statuses) or set(TERMINAL_RUN_STATUSES)
    if chosen - TERMINAL_RUN_STATUSES:
        raise ValueError(f"not finished statuses: {sorted(status.value for status in chosen - TERMINAL_RUN_STATUSES)}")
    return sorted(status.value for status in chosen)


class RetentionStore:
    """The statements of retention.sql."""

    def __init__(self, database: Database) -> None:
        sql = database.statements(__package__, "retention.sql")
        self._set_policy = sql.query("set_policy", PolicyInput, PolicyRow)
        self._list_policies = sql.query("list_policies", NoInput, PolicyRow)
        self._delete_policy = sql.query("delete_policy", PolicyIdInput, PolicyIdRow)
        self._erase = sql.query("erase_expired_runs", EraseInput, ErasedRunRow)
        self._erase_of_workflow = sql.query("erase_expired_runs_of_workflow", EraseOfWorkflowInput, ErasedRunRow)

    async def set_policy(self, workflow: str | None, statuses: Iterable[RunStatus], keep: timedelta) -> PolicyRow:
        """Create the policy of (workflow, statuses), or set its keep; return it as stored."""
        row = await self._set_policy.one(PolicyInput(workflow or "", policy_statuses(statuses), keep))
        assert row is not None  # an upsert returns its row
        return row

    async def list_policies(self) -> list[PolicyRow]:
        return await self._list_policies.all(NO_INPUT)

    async def delete_policy(self, policy_id: int) -> None:
        """NotFound for an unknown policy."""
        if await self._delete_policy.one(PolicyIdInput(policy_id)) is None:
            raise errors.NotFound(f"retention policy {policy_id} not found")

    async def erase_expired(self, policy: Policy, batch: int) -> list[uuid.UUID]:
        """Erase up to `batch` runs the policy matches (skipping runs others hold); their ids."""
        statuses = [status.value for status in policy.statuses]
        if policy.workflow is None:
            rows = await self._erase.all(EraseInput(statuses, policy.keep, batch))
        else:
            rows = await self._erase_of_workflow.all(EraseOfWorkflowInput(policy.workflow, statuses, policy.keep, batch))
        return [row["run_id"] for row in rows]


__all__ = ["Policy", "RetentionStore", "policy_statuses"]
