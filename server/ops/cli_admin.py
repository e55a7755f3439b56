"""The operator commands `workers` and `retention list|set|delete`, through the Python client.

Rows are printed from the result dataclasses' own fields (WorkerInfo, RetentionPolicy), so a
field the client adds later shows up by itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from workflowstate.client import WorkflowStateClient

from . import cli_filters as values
from .cli_connection import EXIT_OK, command_parser, finish_command
from .cli_output import age, header, jsonable, print_json, print_table, shortened, span

if TYPE_CHECKING:
    from .cli_connection import Commands
    from .cli_parser import EnvParser


def cell(value: Any) -> str:
    """A value of any field as a table cell: times as ages, lists joined, `-` for none."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return age(value)
    if isinstance(value, timedelta):
        return span(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(cell(item) for item in value) or "-"
    if isinstance(value, dict):
        return shortened(json.dumps(jsonable(value), ensure_ascii=False), 60)
    plain = jsonable(value)
    return shortened(str(plain), 80)


def print_records(records: Sequence[Any], as_json: bool, nothing: str) -> None:
    """Dataclass records as JSON lines or as a table of all their fields."""
    if as_json:
        for record in records:
            print_json(record)
        return
    if not records:
        print(nothing, file=sys.stderr)
        return
    names = [field.name for field in dataclasses.fields(records[0])]
    print_table([header(name) for name in names], [[cell(getattr(record, name)) for name in names] for record in records])


def list_workers(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    print_records(client.list_workers(), args.json, "no workers connected")
    return EXIT_OK


def list_retention(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    print_records(client.list_retention_policies(), args.json, "no retention policies: runs are kept for ever")
    return EXIT_OK


def set_retention(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    policy = client.set_retention_policy(workflow=args.workflow, statuses=args.status, keep=args.keep)
    print_records([policy], args.json, "")
    return EXIT_OK


def delete_retention(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    client.delete_retention_policy(args.policy_id)
    if args.json:
        print_json({"policy_id": args.policy_id, "deleted": True})
    else:
        print(f"deleted retention policy {args.policy_id}")
    return EXIT_OK


def add_commands(commands: Commands, connection: EnvParser) -> None:
    """Add `workers` and `retention` to the `workflowstate` subcommands."""
    workers = command_parser(
        commands, "workers", connection, "worker streams connected to any server",
        "The worker streams connected to any server: worker id, rpc names, tasks in flight, since when, which server.",
    )  # fmt: skip
    finish_command(workers, list_workers)

    retention = commands.add_parser(
        "retention", help="how long finished runs are kept",
        description="Retention policies: every server deletes the runs they match once older than their keep, in small batches.",
    )  # fmt: skip
    retention_commands = retention.add_subparsers(dest="retention_command", metavar="COMMAND", required=True)
    listing = command_parser(retention_commands, "list", connection, "the policies", "Every retention policy.")
    finish_command(listing, list_retention)
    setting = command_parser(
        retention_commands, "set", connection, "keep matching runs for a time, then delete them",
        "Keep the runs of --workflow (every workflow when not given) in the statuses of --status for --keep after they "
        "were last updated, then delete them. The same workflow and statuses again replaces the keep.",
    )  # fmt: skip
    setting.add_argument("--workflow", default=None, help="this workflow's runs only (default: every workflow)")
    setting.add_argument("--status", type=values.finished_statuses, default=(), metavar="S[,S...]", help=f"runs in any of these finished statuses ({values.FINISHED_NAMES}; default: all three)")
    setting.add_argument("--keep", type=values.span, required=True, metavar="LENGTH", help="how long to keep them: 30m, 12h, 30d, 1w, or several (1d12h)")
    finish_command(setting, set_retention)
    deleting = command_parser(retention_commands, "delete", connection, "remove a policy", "Remove a retention policy (runs it would delete are kept).")
    deleting.add_argument("policy_id", type=values.positive, metavar="POLICY_ID", help="as `retention list` shows it")
    finish_command(deleting, delete_retention)
