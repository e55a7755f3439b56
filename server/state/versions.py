"""Versions of a workflow's graph (UpsertWorkflowVersion and its kin): one statement of
versions.sql each, the status moves checked against state/transitions.py's VERSION_MOVES.

A version is named by its workflow and graph hash; a hash names one graph, so a version is
written once and only its status changes afterwards. It speaks Python values and returns rows as
dicts, as store.py does.
"""

from __future__ import annotations

from ..db.database import Database
from .inputs import MoveVersionInput, UpsertVersionInput, VersionKeyInput
from .outcomes import Op, OutcomeBug, Write, checked, missing
from .rows import VersionMoveRow, VersionRow, VersionUpsertRow
from .transitions import VersionStatus, version_sources


class VersionStore:
    """The versions of workflows' graphs, one named statement of versions.sql each."""

    def __init__(self, database: Database) -> None:
        sql = database.statements(__package__, "versions.sql")
        self._upsert = sql.query("upsert_workflow_version", UpsertVersionInput, VersionUpsertRow)
        self._get = sql.query("get_workflow_version", VersionKeyInput, VersionRow)
        self._update_status = sql.query("update_workflow_version_status", MoveVersionInput, VersionMoveRow)

    async def upsert(self, workflow: str, graph_hash: str, graph_json: str, source: str, status: VersionStatus) -> VersionUpsertRow:
        """Record the version, or return the existing one unchanged; the row's `created` says which."""
        row = await self._upsert.one(UpsertVersionInput(workflow, graph_hash, graph_json, source, status.value))
        if row is None:  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING always returns its row
            raise OutcomeBug("the statement of upsert version returned no row")
        return row

    async def get(self, workflow: str, graph_hash: str) -> VersionRow:
        row = await self._get.one(VersionKeyInput(workflow, graph_hash))
        if row is None:
            raise missing(f"version {graph_hash!r} of workflow {workflow!r} not found", workflow=workflow, graph_hash=graph_hash)
        return row

    async def update_status(self, workflow: str, graph_hash: str, status: VersionStatus) -> VersionMoveRow:
        """Move the version to `status` (a repeat is a no-op); FailedPrecondition for a move the table lacks."""
        item = MoveVersionInput(workflow, graph_hash, status.value, version_sources(status))
        write = Write(Op.MOVE_VERSION, target=status.value, version=(workflow, graph_hash))
        return checked(await self._update_status.one(item), write)


__all__ = ["VersionStore"]
