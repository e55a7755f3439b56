"""The operator commands `schedules list|create|pause|resume|delete`, through the Python client."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from workflowstate.client import Schedule, ScheduleCatchUp, ScheduleOverlap, WorkflowStateClient

from . import cli_filters as values
from .cli_connection import EXIT_OK, command_parser, finish_command
from .cli_output import age, utc_time, print_json, print_table, span

if TYPE_CHECKING:
    from .cli_connection import Commands
    from .cli_parser import EnvParser


def when(schedule: Schedule) -> str:
    """A schedule's times, as a person reads them: `0 9 * * 1-5 Europe/Paris` or `every 5m`."""
    if schedule.interval is not None:
        return f"every {span(schedule.interval)}"
    return f"{schedule.cron} {schedule.timezone}"


def print_schedules(schedules: list[Schedule], as_json: bool) -> None:
    if as_json:
        for schedule in schedules:
            print_json(schedule)
        return
    if not schedules:
        print("no schedules", file=sys.stderr)
        return
    print_table(
        ["SCHEDULE ID", "WORKFLOW", "WHEN", "OVERLAP", "CATCH UP", "NEXT", "LAST RUN", "LAST STATUS", "SKIPPED"],
        [
            [
                s.schedule_id, s.workflow, when(s), s.overlap.value, s.catch_up.value,
                "paused" if s.paused else utc_time(s.next_fire_time), s.last_run_id or "-",
                f"{s.last_run_status.value} ({age(s.last_schedule_time)})" if s.last_run_status else "-", s.overlap_skips,
            ]
            for s in schedules
        ],
    )  # fmt: skip


def list_schedules(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    print_schedules(list(client.iter_schedules(page_size=1000)), args.json)
    return EXIT_OK


def create_schedule(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    schedule = client.create_schedule(
        args.schedule_id, args.workflow, args.input, cron=args.cron, interval=args.every, timezone=args.timezone,
        overlap=args.overlap, catch_up=args.catch_up,
    )  # fmt: skip
    print_schedules([schedule], args.json)
    return EXIT_OK


def pause_schedule(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    print_schedules([client.pause_schedule(args.schedule_id)], args.json)
    return EXIT_OK


def resume_schedule(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    print_schedules([client.resume_schedule(args.schedule_id)], args.json)
    return EXIT_OK


def delete_schedule(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    client.delete_schedule(args.schedule_id)
    if args.json:
        print_json({"schedule_id": args.schedule_id, "deleted": True})
    else:
        print(f"deleted schedule {args.schedule_id}")
    return EXIT_OK


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"must be JSON ({err})") from None


def _choice(kind: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            return kind(text.lower())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(member.value for member in kind)}") from None

    return parse


def add_commands(commands: Commands, connection: EnvParser) -> None:
    """Add `schedules` to the `workflowstate` subcommands."""
    schedules = commands.add_parser(
        "schedules", help="runs the servers create at set times",
        description="Schedules: every server creates a run of the schedule's workflow at each occurrence of its cron "
        "expression or interval, exactly once per occurrence.",
    )  # fmt: skip
    schedule_commands = schedules.add_subparsers(dest="schedules_command", metavar="COMMAND", required=True)
    listing = command_parser(schedule_commands, "list", connection, "every schedule", "Every schedule, with its next occurrence and its latest run.")
    finish_command(listing, list_schedules)

    creating = command_parser(
        schedule_commands, "create", connection, "create a schedule",
        "Create a schedule: a run of --workflow with --input at each occurrence of --cron (in --timezone) or --every. "
        "The same command again is a no-op; another schedule with the same id is refused (delete it first).",
    )  # fmt: skip
    creating.add_argument("schedule_id", metavar="SCHEDULE_ID", help="its id: letters, digits, '.', '_', ':', '-'")
    creating.add_argument("--workflow", required=True, help="the workflow of its runs")
    when_group = creating.add_mutually_exclusive_group(required=True)
    when_group.add_argument("--cron", metavar="EXPR", help="a 5-field cron expression, such as '0 9 * * mon-fri'")
    when_group.add_argument("--every", type=values.span, metavar="LENGTH", help="an interval: 30s, 5m, 1h, 1d (at its multiples since the Unix epoch, UTC)")
    creating.add_argument("--timezone", default=None, metavar="ZONE", help="the IANA timezone of --cron, such as Europe/Paris (default: UTC)")
    creating.add_argument("--input", type=json_value, default=None, metavar="JSON", help="the input of each run (default: null)")
    creating.add_argument("--overlap", type=_choice(ScheduleOverlap), default=ScheduleOverlap.SKIP, metavar="skip|allow", help="while the latest run has not finished: skip the occurrence (default) or allow it")
    creating.add_argument("--catch-up", type=_choice(ScheduleCatchUp), default=ScheduleCatchUp.SKIP, metavar="skip|latest", help="occurrences no server handled within 60 s: skip them (default) or run the latest once")
    finish_command(creating, create_schedule)

    for name, command, help_text in [
        ("pause", pause_schedule, "stop a schedule firing until resumed"),
        ("resume", resume_schedule, "let a paused schedule fire again from its next occurrence (the paused time is not replayed)"),
        ("delete", delete_schedule, "remove a schedule (its runs stay)"),
    ]:
        parser = command_parser(schedule_commands, name, connection, help_text, help_text[0].upper() + help_text[1:] + ".")
        parser.add_argument("schedule_id", metavar="SCHEDULE_ID", help="as `schedules list` shows it")
        finish_command(parser, command)
