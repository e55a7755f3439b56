"""The rows of retention.sql's statements, one TypedDict per shape."""

# No `from __future__ import annotations`: TypedDict keys are read from evaluated annotations (state/rows.py says why).
import uuid
from datetime import datetime, timedelta
from typing import TypedDict


class PolicyRow(TypedDict):
    """set_policy, list_policies: a row of table retention_policies (workflow '': every workflow)."""

    policy_id: int
    workflow: str
    statuses: list[str]
    keep: timedelta
    create_time: datetime
    update_time: datetime


class PolicyIdRow(TypedDict):
    """delete_policy: the policy deleted (no row: unknown id)."""

    policy_id: int


class ErasedRunRow(TypedDict):
    """erase_expired_runs*: a run erased."""

    run_id: uuid.UUID


__all__ = ["ErasedRunRow", "PolicyIdRow", "PolicyRow"]
