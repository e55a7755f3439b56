"""The operator commands on runs: `runs list|show|cancel|delete`, `workflows`, `leases`.

They talk to a server through the Python client only, never the server's modules, so they work
from any machine with the base install (tests/test_architecture.py checks it).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from workflowstate.client import LeaseInfo, Run, RunStatus, StepAttempt, StepState, StepStatus, UndecodableJson, WorkflowStateClient, WorkflowStateError

from . import cli_filters as values
from .cli_connection import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, command_parser, error_line, exit_code_of, fail, finish_command
from .cli_output import age, jsonable, utc_time, print_json, print_table, shortened, span

if TYPE_CHECKING:
    from .cli_connection import Commands
    from .cli_parser import EnvParser

T = TypeVar("T")

_FINISHED_STEP = (StepStatus.SUCCEEDED, StepStatus.FAILED)
_MAX_CANCEL_BATCH = 10_000  # CancelRuns' own limit per call
_MAX_DELETE_BATCH = 1000  # DeleteRuns' own limit per call (one transaction)


# --- what a run, a step, an attempt look like ------------------------------------------------


def run_summary(run: Run) -> dict[str, Any]:
    """A run in a list: without payloads or stack (ListRuns sends none)."""
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "status": run.status.value,
        "create_time": jsonable(run.create_time),
        "update_time": jsonable(run.update_time),
        "error": None if run.error is None else {"message": run.error.message, "code": run.error.code},
    }


def attempt_duration(attempt: StepAttempt) -> timedelta | None:
    """From the attempt's start to its end; None while it is not over."""
    return attempt.update_time - attempt.create_time if attempt.status in _FINISHED_STEP else None


def attempt_record(attempt: StepAttempt) -> dict[str, Any]:
    duration = attempt_duration(attempt)
    return {**jsonable(attempt), "duration_seconds": None if duration is None else duration.total_seconds()}


def step_record(step: StepState, attempts: list[StepAttempt]) -> dict[str, Any]:
    return {**jsonable(step), "attempts": [attempt_record(attempt) for attempt in attempts if attempt.step_id == step.step_id]}


def _error_text(run_or_step: Run | StepState | StepAttempt) -> str:
    error = run_or_step.error
    if error is None:
        return "-"
    return shortened(error.message) + (f" [{error.code}]" if error.code else "")


def _payload_text(value: Any) -> str:
    import json

    if isinstance(value, UndecodableJson):
        return shortened(str(value), 200)
    return "-" if value is None else shortened(json.dumps(value, ensure_ascii=False), 200)


# --- the commands ------------------------------------------------------------------------------


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"workflow": args.workflow, "created_after": args.since, "created_before": args.until}


def _take(items: Iterable[T], limit: int | None) -> tuple[list[T], bool]:
    """At most `limit` items (all for None), and whether more were there."""
    if limit is None:
        return list(items), False
    taken = list(itertools.islice(items, limit + 1))
    return taken[:limit], len(taken) > limit


def list_runs(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    page_size = 1000 if args.limit is None else min(args.limit + 1, 1000)  # one extra says whether more match
    runs = client.iter_runs(**_filters(args), statuses=args.status or (), oldest_first=args.order == "oldest", page_size=page_size)
    if args.json:
        for index, run in enumerate(runs):
            if args.limit is not None and index == args.limit:
                break
            print_json(run_summary(run))
        return EXIT_OK
    shown, more = _take(runs, args.limit)
    if not shown:
        print("no runs match", file=sys.stderr)
        return EXIT_OK
    print_table(
        ["RUN ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "ERROR"],
        [[run.run_id, run.workflow, run.status.value, utc_time(run.create_time), age(run.update_time), _error_text(run)] for run in shown],
    )
    if more:
        print(f"({len(shown)} shown, more match: --limit N or --limit all, or narrow the filters)", file=sys.stderr)
    return EXIT_OK


def show_run(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    run = client.get_run(args.run_id)
    if run is None:
        return fail(f"NOT_FOUND: run {args.run_id} not found")
    steps = client.list_steps(run.run_id)
    attempts = client.get_run_history(run.run_id)
    if args.json:
        print_json({"run": jsonable(run), "steps": [step_record(step, attempts) for step in steps]})
        return EXIT_OK
    print_table(
        ["run", run.run_id],
        [
            ["workflow", run.workflow],
            ["status", run.status.value],
            ["created", f"{utc_time(run.create_time)} ({age(run.create_time)})"],
            ["updated", f"{utc_time(run.update_time)} ({age(run.update_time)})"],
            ["input", _payload_text(run.input)],
            ["output", _payload_text(run.output)],
            ["error", _error_text(run)],
        ],
    )
    print()
    if not steps:
        print("no steps")
        return EXIT_OK
    print("steps:")
    print_table(
        ["STEP", "RPC", "STATUS", "ATTEMPT", "WORKER", "UPDATED"],
        [[s.step_name, s.rpc_name, s.status.value, s.attempt_count, s.worker_id or "-", age(s.update_time)] for s in steps],
    )
    print()
    print("attempts:")
    print_table(
        ["STEP", "ATTEMPT", "STATUS", "STARTED", "DURATION", "ERROR"],
        [
            [a.step_name, a.attempt, a.status.value, utc_time(a.create_time), span(d) if (d := attempt_duration(a)) is not None else "-", _error_text(a)]
            for a in attempts
        ],
    )
    return EXIT_OK


def _each(run_ids: list[str], act: Any) -> int:
    """`act(run_id)` for every id; a refused one is reported and the rest still done; an
    unreachable server stops at once."""
    worst = EXIT_OK
    for run_id in run_ids:
        try:
            act(run_id)
        except WorkflowStateError as err:
            code = exit_code_of(err)
            if code != EXIT_REFUSED:
                raise
            print(error_line(err), file=sys.stderr, flush=True)
            worst = EXIT_REFUSED
    return worst


_FILTER_OPTIONS = "--workflow, --status, --since, --until"


def _has_filters(args: argparse.Namespace) -> bool:
    return any(value is not None for value in (args.workflow, args.status, args.since, args.until))


def _describe(args: argparse.Namespace, statuses: list[RunStatus]) -> str:
    words = [f"{'/'.join(status.value for status in statuses)} run(s)"]
    if args.workflow is not None:
        words.append(f"of workflow {args.workflow!r}")
    if args.since is not None:
        words.append(f"created since {utc_time(args.since)}")
    if args.until is not None:
        words.append(f"created before {utc_time(args.until)}")
    return " ".join(words)


def _count(client: WorkflowStateClient, args: argparse.Namespace, statuses: list[RunStatus], most: int | None) -> int:
    """How many runs match (counting stops at `most`)."""
    runs = client.iter_runs(**_filters(args), statuses=statuses, oldest_first=True, page_size=1000 if most is None else min(most, 1000))
    return len(_take(runs, most)[0])


def _confirmed(args: argparse.Namespace, action: str) -> bool:
    """--yes, or a `y` at the prompt when a person is there; else say what would be done."""
    if args.yes:
        return True
    if sys.stdin.isatty():
        try:
            answer = input(f"{action}? [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")
    print(f"workflowstate: would {action}; pass --yes to do it", file=sys.stderr, flush=True)
    return False


def _bulk(client: WorkflowStateClient, args: argparse.Namespace, verb: str, done_word: str, statuses: list[RunStatus], batch_limit: int, act: Any) -> int:
    """Count what matches, confirm, then act in batches, never on more runs than were counted
    (runs that start matching meanwhile are left for the next time)."""
    count = _count(client, args, statuses, args.max)
    what = _describe(args, statuses)
    if count == 0:
        print(f"no {what} match", file=sys.stderr)
        return EXIT_OK
    if not _confirmed(args, f"{verb} {count} {what}"):
        return EXIT_REFUSED
    done = 0
    while done < count:
        batch = min(batch_limit, count - done)
        run_ids = act(batch)
        for run_id in run_ids:
            _report(args, run_id, done_word)
        done += len(run_ids)
        if len(run_ids) < batch:
            break
    if not args.json:
        print(f"{done_word} {done} run(s)", file=sys.stderr)
    return EXIT_OK


def _report(args: argparse.Namespace, run_id: str, done_word: str) -> None:
    if args.json:
        print_json({"run_id": run_id, done_word: True})
    else:
        print(f"{done_word} {run_id}", flush=True)


def cancel_runs(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    if args.run_ids:
        if _has_filters(args) or args.max is not None:
            return fail(f"give run ids or filters ({_FILTER_OPTIONS}, --max), not both", EXIT_USAGE)

        def cancel(run_id: str) -> None:
            run = client.cancel_run(run_id, reason=args.reason)
            if args.json:
                print_json(run_summary(run))
            else:
                print(f"cancelled {run.run_id}", flush=True)

        return _each(args.run_ids, cancel)
    if not _has_filters(args):
        return fail(f"give run ids, or filters ({_FILTER_OPTIONS}) to cancel many", EXIT_USAGE)
    if args.status is not None and set(args.status) - set(_NOT_FINISHED):
        return fail("only runs not finished can be cancelled: --status running,suspended (or one), or leave --status out", EXIT_USAGE)
    statuses = args.status or list(_NOT_FINISHED)
    return _bulk(
        client, args, "cancel", "cancelled", statuses, _MAX_CANCEL_BATCH,
        lambda batch: client.cancel_runs(**_filters(args), statuses=statuses, max_runs=batch, reason=args.reason),
    )  # fmt: skip


# Runs that may still change: cancelled by `runs cancel`, deleted by `runs delete` only with --force.
_NOT_FINISHED = (RunStatus.RUNNING, RunStatus.SUSPENDED)


def delete_runs(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    if args.run_ids:
        if _has_filters(args) or args.max is not None:
            return fail(f"give run ids or filters ({_FILTER_OPTIONS}, --max), not both", EXIT_USAGE)

        def delete(run_id: str) -> None:
            client.delete_run(run_id, force=args.force)
            _report(args, run_id, "deleted")

        return _each(args.run_ids, delete)
    if not _has_filters(args):
        return fail(f"give run ids, or filters ({_FILTER_OPTIONS}) to delete many", EXIT_USAGE)
    statuses = args.status or [status for status in RunStatus if args.force or status not in _NOT_FINISHED]
    if set(statuses) & set(_NOT_FINISHED) and not args.force:
        return fail("running and suspended runs are deleted only with --force", EXIT_USAGE)
    return _bulk(
        client, args, "delete", "deleted", statuses, _MAX_DELETE_BATCH,
        lambda batch: client.delete_runs(**_filters(args), statuses=statuses, max_runs=batch, force=args.force),
    )  # fmt: skip


def list_workflows(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    summaries = client.list_workflows()
    if args.json:
        for summary in summaries:
            print_json(summary)
        return EXIT_OK
    if not summaries:
        print("no workflows: no runs yet", file=sys.stderr)
        return EXIT_OK
    print_table(
        ["WORKFLOW", *(status.value.upper() for status in RunStatus), "TOTAL"],
        [[s.workflow, *(s.run_counts.get(status, 0) for status in RunStatus), sum(s.run_counts.values())] for s in summaries],
    )
    return EXIT_OK


def _all_leases(client: WorkflowStateClient, prefix: str | None, page_size: int) -> Iterator[LeaseInfo]:
    token: str | None = None
    while True:
        page = client.list_leases(key_prefix=prefix, page_size=page_size, page_token=token)
        yield from page.leases
        token = page.next_page_token
        if token is None:
            return


def list_leases(client: WorkflowStateClient, args: argparse.Namespace) -> int:
    page_size = 1000 if args.limit is None else min(args.limit + 1, 1000)
    shown, more = _take(_all_leases(client, args.prefix, page_size), args.limit)
    if args.json:
        for lease in shown:
            print_json(lease)
        return EXIT_OK
    if not shown:
        print("no leases held", file=sys.stderr)
        return EXIT_OK
    print_table(
        ["KEY", "HOLDER", "TOKEN", "ACQUIRED", "EXPIRES"],
        [[lease.key, lease.holder, lease.fencing_token, utc_time(lease.acquire_time), age(lease.expire_time)] for lease in shown],
    )
    if more:
        print(f"({len(shown)} shown, more held: --limit N or --limit all)", file=sys.stderr)
    return EXIT_OK


# --- the parser ----------------------------------------------------------------------------------


def _add_filters(parser: argparse.ArgumentParser, status_help: str) -> None:
    parser.add_argument("--workflow", default=None, help="runs of this workflow only")
    parser.add_argument("--status", type=values.statuses, default=None, metavar="S[,S...]", help=status_help)
    parser.add_argument("--since", type=values.moment, default=None, metavar="WHEN", help="runs created at or after WHEN: a length ago (30m, 1h, 2d, 1w) or an ISO time (local unless it has a zone)")
    parser.add_argument("--until", type=values.moment, default=None, metavar="WHEN", help="runs created before WHEN (same forms as --since)")


def add_commands(commands: Commands, connection: EnvParser) -> None:
    """Add `runs`, `workflows` and `leases` to the `workflowstate` subcommands."""
    runs = commands.add_parser("runs", help="list, show, cancel and delete runs", description="List, show, cancel and delete runs.")
    run_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)

    listing = command_parser(run_commands, "list", connection, "list runs, newest first", "List runs that match every filter given, newest first.")
    _add_filters(listing, f"any of these statuses ({values.STATUS_NAMES}), e.g. failed,running")
    listing.add_argument("--limit", type=values.limit, default=50, metavar="N", help="show at most N runs, or 'all' (default: 50)")
    listing.add_argument("--order", choices=["newest", "oldest"], default="newest", help="by create time (default: newest first)")
    finish_command(listing, list_runs)

    show = command_parser(run_commands, "show", connection, "a run, its steps and every attempt", "Show a run, its steps, and every attempt of each step with its status, duration and error.")
    show.add_argument("run_id", metavar="RUN_ID")
    finish_command(show, show_run, "one JSON object: the run and its steps, each with its attempts")

    cancel = command_parser(
        run_commands, "cancel", connection, "cancel running or suspended runs, by id or by filter",
        "Cancel running or suspended runs: the ones named, or every such run that matches the filters (which asks first: "
        "without --yes it says how many match and exits 1, or prompts at a terminal). Workers running their steps are told.",
    )  # fmt: skip
    cancel.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    cancel.add_argument("--reason", default=None, help="stored as the run's error message")
    _add_filters(cancel, "running and/or suspended (the runs that can be cancelled); default: both")
    cancel.add_argument("--max", type=values.positive, default=None, metavar="N", help="with filters: cancel at most N runs, oldest first")
    cancel.add_argument("--yes", action="store_true", help="with filters: do it without asking")
    finish_command(cancel, cancel_runs)

    delete = command_parser(
        run_commands, "delete", connection, "erase runs, by id or by filter",
        "Erase runs with their steps, attempts and events: the ones named, or every run that matches the filters (which asks "
        "first: without --yes it says how many match and exits 1, or prompts at a terminal). Running runs only with --force.",
    )  # fmt: skip
    delete.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    _add_filters(delete, f"any of these statuses ({values.STATUS_NAMES}); default: all but running and suspended (all with --force)")
    delete.add_argument("--force", action="store_true", help="delete running and suspended runs too")
    delete.add_argument("--max", type=values.positive, default=None, metavar="N", help="with filters: delete at most N runs, oldest first")
    delete.add_argument("--yes", action="store_true", help="with filters: do it without asking")
    finish_command(delete, delete_runs)

    workflows = command_parser(commands, "workflows", connection, "workflows and their runs per status", "Every workflow that has runs, with how many it has in each status.")
    finish_command(workflows, list_workflows)

    leases = command_parser(commands, "leases", connection, "leases held now", "The leases held now: key, holder, fencing token, when acquired, when they expire.")
    leases.add_argument("--prefix", default=None, help="keys that start with this only, e.g. run:")
    leases.add_argument("--limit", type=values.limit, default=50, metavar="N", help="show at most N leases, or 'all' (default: 50)")
    finish_command(leases, list_leases)
