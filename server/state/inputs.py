"""The inputs of the statements of state.sql, catalog.sql and versions.sql run once per call (the
set-based ones are set_inputs.py): one frozen dataclass per statement, its fields the statement's
parameters (db/params.py), its CONSTANTS the parameters that come from the transition table.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..db.params import named, spread
from .transitions import RunVia, StepStatus, open_run_statuses, run_sources, run_target

# A run with a step in one of these is being moved by someone: it is not stalled (ListStalledRuns).
MOVING_STEP_STATUSES = frozenset({StepStatus.RUNNING, StepStatus.SCHEDULED, StepStatus.SUSPENDED})

_CANCELLED = run_target(RunVia.CANCEL)
# The parameters of a cancel: where it moves a run, from which statuses.
_CANCEL = {
    "to_status": _CANCELLED.value,
    "from_statuses": run_sources(_CANCELLED, RunVia.CANCEL),
    "open_run_statuses": open_run_statuses(),
}


@dataclass(frozen=True)
class RunIdInput:
    """get_run_history, list_steps: one run's rows."""

    run_id: uuid.UUID


@dataclass(frozen=True)
class RunFilterInput:
    """A run filter as the statements of catalog.sql take it, its workflow aside (a statement of its
    own lists one workflow's runs): None matches every run."""

    statuses: list[str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass(frozen=True)
class ListRunsInput:
    """list_runs_newest_first, list_runs_oldest_first: one page of the runs the filter matches,
    past (after_time, after_id)."""

    runs: RunFilterInput = field(metadata=spread(""))
    limit: int
    full: bool
    # The last run of the previous page (None: the first page).
    after_time: datetime | None = None
    after_id: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True)
class ListRunsOfWorkflowInput(ListRunsInput):
    """list_runs_of_workflow_newest_first, list_runs_of_workflow_oldest_first: the same, of one workflow's runs."""

    workflow: str


@dataclass(frozen=True)
class CancelRunInput:
    """cancel_run: one run cancelled with its error (the operator's reason)."""

    run_id: uuid.UUID
    error_json: str = field(metadata=named("error"))

    CONSTANTS: ClassVar[Mapping[str, Any]] = _CANCEL


@dataclass(frozen=True)
class CancelRunsInput:
    """cancel_runs: up to max_runs running runs the filter matches (of workflow; None: any), cancelled with one error."""

    workflow: str | None
    runs: RunFilterInput = field(metadata=spread(""))
    error_json: str = field(metadata=named("error"))
    max_runs: int

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"to_status": _CANCEL["to_status"], "from_statuses": _CANCEL["from_statuses"]}


@dataclass(frozen=True)
class DeleteRunInput:
    """delete_run: one run erased (a running one only with force)."""

    run_id: uuid.UUID
    force: bool

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": open_run_statuses()}


@dataclass(frozen=True)
class DeleteRunsInput:
    """delete_runs: up to max_runs runs the filter matches (of workflow; None: any) erased (running ones only with force)."""

    workflow: str | None
    runs: RunFilterInput = field(metadata=spread(""))
    max_runs: int
    force: bool

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": open_run_statuses()}


@dataclass(frozen=True)
class StalledRunsInput:
    """list_stalled_runs: up to limit running runs unchanged since updated_before, none of their steps moving."""

    updated_before: datetime
    limit: int

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"moving_statuses": sorted(status.value for status in MOVING_STEP_STATUSES)}


@dataclass(frozen=True)
class UndispatchedStepsInput:
    """list_undispatched_steps: up to limit pending steps of running runs unchanged since updated_before."""

    updated_before: datetime
    limit: int


@dataclass(frozen=True)
class VersionKeyInput:
    """get_workflow_version: a version by its workflow and graph hash."""

    workflow: str
    graph_hash: str


@dataclass(frozen=True)
class UpsertVersionInput:
    """upsert_workflow_version: a version recorded in status (or the one stored, as it is)."""

    workflow: str
    graph_hash: str
    graph_json: str = field(metadata=named("graph"))
    source: str
    status: str


@dataclass(frozen=True)
class MoveVersionInput:
    """update_workflow_version_status: a version's move to to_status from one of from_statuses."""

    workflow: str
    graph_hash: str
    to_status: str
    from_statuses: list[str]


__all__ = [
    "MOVING_STEP_STATUSES",
    "CancelRunInput",
    "CancelRunsInput",
    "DeleteRunInput",
    "DeleteRunsInput",
    "ListRunsInput",
    "ListRunsOfWorkflowInput",
    "MoveVersionInput",
    "RunFilterInput",
    "RunIdInput",
    "StalledRunsInput",
    "UndispatchedStepsInput",
    "UpsertVersionInput",
    "VersionKeyInput",
]
