"""The PostgreSQL store: every read and write of workflow state, one statement each.

The store speaks Python values (JSON as text, statuses as the enums of transitions.py) and
returns rows as dicts; it knows nothing of protobuf. Each state change is one statement from
state.sql that locks, checks and writes together (see the comment at the top of that file);
when it changes nothing, the row it returns tells the store which error to raise.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core import errors
from ..db.database import Database, Row
from .transitions import TERMINAL_RUN_STATUSES, RunStatus, StepStatus, Via, run_sources, step_sources

log = logging.getLogger("workflowstate.server.store")


@dataclass(frozen=True)
class FailureRecord:
    """An error as stored in the error jsonb column."""

    message: str
    stack: str = ""
    code: str = ""

    def to_json(self) -> str:
        return json.dumps({"message": self.message, "stack": self.stack, "code": self.code}, separators=(",", ":"))


@dataclass(frozen=True)
class Fence:
    """A lease a write is made under: its fencing token, and its key (None: the run's key)."""

    token: int
    key: str | None = None


def _fence_params(fence: Fence | None) -> dict[str, Any]:
    return {"fencing_token": fence.token if fence else None, "lease_key": fence.key if fence else None}


def _check_fence(row: Row, fence: Fence | None) -> None:
    """Refuse a write whose token is no longer the latest of its lease key (the statement
    returns the key it checked: the given one, or the run's by default)."""
    key = row["lease_key"]
    if fence is None or row["current_token"] == fence.token:
        return
    if row["current_token"] is None:
        raise errors.FailedPrecondition(f"fencing token {fence.token} is unknown: no lease was ever granted on {key!r}")
    raise errors.FailedPrecondition(
        f"stale fencing token {fence.token} for lease {key!r}: the current token is {row['current_token']}; nothing was written"
    )


class StateStore:
    """Runs and steps: every read and write of workflow state, one named statement of state.sql each."""

    def __init__(self, database: Database) -> None:
        self._sql = database.statements(__package__, "state.sql")

    async def fetch_one(self, query: str, params: dict[str, Any]) -> Row | None:
        return await self._sql.fetch_one(query, params)

    async def fetch_all(self, query: str, params: dict[str, Any]) -> list[Row]:
        return await self._sql.fetch_all(query, params)

    async def _found(self, query: str, params: dict[str, Any], missing: str) -> Row:
        """One row, or NotFound(missing) when the statement returns none."""
        row = await self.fetch_one(query, params)
        if row is None:
            raise errors.NotFound(missing)
        return row

    # Runs

    async def create_run(self, workflow: str, input_json: str, request_id: str | None) -> Row:
        row = await self.fetch_one("create_run", {"workflow": workflow, "input": input_json, "request_id": request_id})
        assert row is not None  # INSERT ... ON CONFLICT DO UPDATE always returns the row
        if not row["created"] and not row["same_request"]:
            raise errors.AlreadyExists(
                f"request_id {request_id!r} was already used for run {row['run_id']} "
                "with a different workflow or input"
            )
        return row

    async def get_run(self, run_id: uuid.UUID) -> Row:
        return await self._found("get_run", {"run_id": run_id}, f"run {run_id} not found")

    async def get_run_history(self, run_id: uuid.UUID) -> list[Row]:
        rows = await self.fetch_all("get_run_history", {"run_id": run_id})
        if not rows:
            raise errors.NotFound(f"run {run_id} not found")
        return [row for row in rows if row["step_id"] is not None]

    async def update_run_status(
        self,
        run_id: uuid.UUID,
        status: RunStatus,
        *,
        output_json: str | None,
        error: FailureRecord | None,
        fence: Fence | None = None,
    ) -> Row:
        row = await self._found(
            "update_run_status",
            {
                "run_id": run_id,
                "status": status.value,
                "set_output": output_json is not None,
                "output": output_json,
                "error": error.to_json() if error else None,
                "from_statuses": run_sources(status),
                **_fence_params(fence),
            },
            f"run {run_id} not found",
        )
        _check_fence(row, fence)
        if row["run_id"] is not None:
            return row
        prior = RunStatus(row["prior_status"])
        if prior is status:
            if not row["same_payload"]:
                raise errors.FailedPrecondition(
                    f"run {run_id} is already {prior.name} with a different output or error"
                )
            return await self.get_run(run_id)
        if prior in TERMINAL_RUN_STATUSES:
            raise errors.FailedPrecondition(f"run {run_id} is {prior.name}; a finished run cannot become {status.name}")
        raise errors.FailedPrecondition(f"run {run_id} cannot move from {prior.name} to {status.name}")

    # Steps

    async def insert_step(
        self,
        run_id: uuid.UUID,
        step_name: str,
        rpc_name: str,
        data_json: str,
        *,
        retries: int | None,
        retry_delay: timedelta | None,
        fence: Fence | None = None,
    ) -> Row:
        row = await self._found(
            "insert_step",
            {
                "run_id": run_id,
                "step_name": step_name,
                "rpc_name": rpc_name,
                "data": data_json,
                "retries": retries,
                "retry_delay": retry_delay,
                **_fence_params(fence),
            },
            f"run {run_id} not found",
        )
        _check_fence(row, fence)
        if row["step_id"] is not None:
            return row
        run_status = RunStatus(row["run_status"])
        if run_status in TERMINAL_RUN_STATUSES:
            raise errors.FailedPrecondition(f"run {run_id} is {run_status.name}; a finished run takes no new steps")
        raise errors.AlreadyExists(f"run {run_id} already has a step named {step_name!r}")

    async def get_step(self, run_id: uuid.UUID, step_name: str) -> Row:
        missing = f"run {run_id} has no step named {step_name!r}"
        return await self._found("get_step", {"run_id": run_id, "step_name": step_name}, missing)

    async def get_step_by_id(self, step_id: uuid.UUID) -> Row:
        return await self._found("get_step_by_id", {"step_id": step_id}, f"step {step_id} not found")

    async def set_step_status(
        self,
        step_id: uuid.UUID,
        status: StepStatus,
        *,
        result_json: str | None = None,
        error: FailureRecord | None = None,
        fence: Fence | None = None,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
        attempt: int | None = None,
    ) -> Row:
        """SetStepScheduled / Running / Result / Error: one statement, checked by the transition table.

        With `attempt`, only that attempt may change (a worker's completion in remote mode).
        """
        params = {
            "step_id": step_id,
            "to_status": status.value,
            "result": result_json,
            "error": error.to_json() if error else None,
            "from_statuses": step_sources(status, Via.SET_STATUS),
            "not_before": not_before,
            "delay": delay,
            "attempt": attempt,
            **_fence_params(fence),
        }
        return await self._change_step("set_step_status", params, status, Via.SET_STATUS, fence)

    async def create_retry_attempt(self, step_id: uuid.UUID, status: StepStatus, *, fence: Fence | None = None) -> Row:
        params = {
            "step_id": step_id,
            "to_status": status.value,
            "from_statuses": step_sources(status, Via.RETRY),
            **_fence_params(fence),
        }
        return await self._change_step("create_retry_attempt", params, status, Via.RETRY, fence)

    async def _change_step(self, query: str, params: dict[str, Any], target: StepStatus, via: Via, fence: Fence | None) -> Row:
        step_id = params["step_id"]
        row = await self._found(query, params, f"step {step_id} not found")
        _check_fence(row, fence)
        if row["step_id"] is not None:
            return row
        prior = StepStatus(row["prior_status"])
        attempt = params.get("attempt")
        if attempt is not None and row["prior_attempt"] != attempt:
            raise errors.FailedPrecondition(
                f"attempt {attempt} of step {step_id} is over: the step is at attempt {row['prior_attempt']} ({prior.name}); "
                "nothing was written"
            )
        if via is Via.SET_STATUS and prior is target:
            if not row["same_payload"]:
                what = "result" if target is StepStatus.SUCCEEDED else "error"
                raise errors.FailedPrecondition(f"step {step_id} is already {prior.name} with a different {what}")
            return await self.get_step_by_id(step_id)
        run_status = RunStatus(row["run_status"])
        if run_status in TERMINAL_RUN_STATUSES:
            raise errors.FailedPrecondition(
                f"step {step_id} belongs to a run that is {run_status.name}; a finished run takes no step writes"
            )
        if via is Via.RETRY:
            raise errors.FailedPrecondition(
                f"step {step_id} is {prior.name}; a retry attempt can only follow a FAILED attempt"
            )
        raise errors.FailedPrecondition(f"step {step_id} cannot move from {prior.name} to {target.name}")


__all__ = ["Fence", "FailureRecord", "StateStore"]
