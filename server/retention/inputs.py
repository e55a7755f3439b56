"""The inputs of retention.sql's statements: one frozen dataclass per statement, its fields the
statement's parameters (db/params.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class PolicyInput:
    """set_policy: the policy of (workflow, statuses) created, or its keep set. workflow '' is every workflow."""

    workflow: str
    statuses: list[str]
    keep: timedelta


@dataclass(frozen=True)
class PolicyIdInput:
    """delete_policy: one policy by id."""

    policy_id: int


@dataclass(frozen=True)
class EraseInput:
    """erase_expired_runs: up to batch runs in one of statuses, finished keep ago."""

    statuses: list[str]
    keep: timedelta
    batch: int


@dataclass(frozen=True)
class EraseOfWorkflowInput:
    """erase_expired_runs_of_workflow: the same, of one workflow's runs."""

    workflow: str
    statuses: list[str]
    keep: timedelta
    batch: int


__all__ = ["EraseInput", "EraseOfWorkflowInput", "PolicyIdInput", "PolicyInput"]
