"""The operator commands' values and printing, without a server: what --since, --status and --keep
accept, and how `workers` and `retention` (cli_admin.py, wired once the client has their calls) parse
and print."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from workflowstate.client import RunStatus
from workflowstate.server.ops import cli_admin, cli_filters
from workflowstate.server.ops.cli_connection import connection_options
from workflowstate.server.ops.cli_parser import EnvParser


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h", 3600), ("2d", 172800), ("1w", 604800), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400)])
def test_spans(text: str, seconds: float) -> None:
    assert cli_filters.span(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "1y", "h", "0m", "-1h", "1h and more"])
def test_bad_spans(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        cli_filters.span(text)


def test_moments_ago_and_iso() -> None:
    before = datetime.now(timezone.utc)
    assert before - timedelta(hours=1, seconds=1) < cli_filters.moment("1h") <= datetime.now(timezone.utc) - timedelta(hours=1)
    assert cli_filters.moment("2026-11-26T09:00:00+00:00") == datetime(2026, 11, 26, 9, tzinfo=timezone.utc)
    local = cli_filters.moment("2026-11-26T09:00")
    assert local.tzinfo is not None and local.replace(tzinfo=None) == datetime(2026, 11, 26, 9)  # local time, zone attached
    with pytest.raises(argparse.ArgumentTypeError, match="an ISO time"):
        cli_filters.moment("yesterday")


def test_statuses() -> None:
    assert cli_filters.statuses("failed,RUNNING,failed") == [RunStatus.FAILED, RunStatus.RUNNING]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown status 'done'"):
        cli_filters.statuses("failed,done")


def _admin_parser() -> argparse.ArgumentParser:
    parser = EnvParser(prog="workflowstate")
    cli_admin.add_commands(parser.add_subparsers(dest="command", required=True), connection_options())
    return parser


def test_retention_set_parses() -> None:
    args = _admin_parser().parse_args(["retention", "set", "--workflow", "orders", "--status", "completed,cancelled", "--keep", "30d"])
    assert (args.workflow, args.status, args.keep) == ("orders", [RunStatus.COMPLETED, RunStatus.CANCELLED], timedelta(days=30))
    assert args.handler is not None and args.target == "127.0.0.1:50051"
    assert _admin_parser().parse_args(["retention", "delete", "7", "--json"]).policy_id == 7
    # Without --status: every finished status (the server's default for an empty list).
    assert _admin_parser().parse_args(["retention", "set", "--keep", "1d"]).status == ()
    assert _admin_parser().parse_args(["workers", "--target", "h:1"]).target == "h:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retention", "set"], "the following arguments are required: --keep"),
        (["retention", "delete", "p-1"], "argument POLICY_ID: must be a positive whole number"),
        (["retention", "set", "--status", "completed", "--keep", "soon"], "argument --keep: must be a length such as 30m"),
        (["retention"], "the following arguments are required: COMMAND"),
    ],
)
def test_retention_bad_usage(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        _admin_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@dataclass(frozen=True)
class _Worker:
    worker_id: str
    rpc_names: list[str]
    tasks_in_flight: int
    connected_since: datetime


def test_records_print_as_table_or_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    workers = [_Worker("w-1", ["chargeCard", "reserve"], 2, since), _Worker("worker-two", [], 0, since)]
    cli_admin.print_records(workers, as_json=False, nothing="none")
    lines = capsys.readouterr().out.splitlines()
    assert re.split(r" {2,}", lines[0]) == ["WORKER ID", "RPC NAMES", "TASKS IN FLIGHT", "CONNECTED SINCE"]
    assert lines[1].split()[:3] == ["w-1", "chargeCard,reserve", "2"] and lines[1].endswith(" ago")
    assert lines[2].split()[:3] == ["worker-two", "-", "0"]
    cli_admin.print_records(workers[:1], as_json=True, nothing="none")
    assert json.loads(capsys.readouterr().out) == {
        "worker_id": "w-1", "rpc_names": ["chargeCard", "reserve"], "tasks_in_flight": 2, "connected_since": since.isoformat(),
    }  # fmt: skip
    cli_admin.print_records([], as_json=False, nothing="no workers connected")
    assert capsys.readouterr().err == "no workers connected\n"
