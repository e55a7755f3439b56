"""Versions of a workflow's graph (UpsertWorkflowVersion and its kin): one statement of
versions.sql each, the status moves checked against state/transitions.py's VERSION_MOVES.

A version is named by its workflow and graph hash; a hash names one graph, so a version is
written once and only its status changes afterwards. It speaks Python values and returns rows as
dicts, as store.py does.
"""

from __future__ import annotations

from ..core import errors
from ..db.database import Database, Row
from .outcomes import Op, OutcomeBug, Write, checked
from .transitions import VersionStatus, version_sources


class VersionStore:
    """The versions of workflows' graphs, one named statement of versions.sql each."""

    def __init__(self, database: Database) -> None:
        self._sql = database.statements(__package__, "versions.sql")

    async def upsert(self, workflow: str, graph_hash: str, graph_json: str, source: str, status: VersionStatus) -> Row:
        """Record the version, or return the existing one unchanged; the row's `created` says which."""
        params = {"workflow": workflow, "graph_hash": graph_hash, "graph": graph_json, "source": source, "status": status.value}
        row = await self._sql.fetch_one("upsert_workflow_version", params)
        if row is None:  # INSERT ... ON CONFLICT DO UPDATE ... RETURNING always returns its row
            raise OutcomeBug("the statement of upsert version returned no row")
        return row

    async def get(self, workflow: str, graph_hash: str) -> Row:
        row = await self._sql.fetch_one("get_workflow_version", {"workflow": workflow, "graph_hash": graph_hash})
        if row is None:
            raise errors.NotFound(f"version {graph_hash!r} of workflow {workflow!r} not found")
        return row

    async def update_status(self, workflow: str, graph_hash: str, status: VersionStatus) -> Row:
        """Move the version to `status` (a repeat is a no-op); FailedPrecondition for a move the table lacks."""
        params = {
            "workflow": workflow,
            "graph_hash": graph_hash,
            "to_status": status.value,
            "from_statuses": version_sources(status),
        }
        write = Write(Op.MOVE_VERSION, target=status.value, version=(workflow, graph_hash))
        return checked(await self._sql.fetch_one("update_workflow_version_status", params), write)


__all__ = ["VersionStore"]
