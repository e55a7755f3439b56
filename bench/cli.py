"""`python -m bench`: measure the server against the SQL limit on one database, print the figures."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from types import FrameType

from .run import GROUPS, Settings, run

SMOKE_SECONDS = 0.5

EPILOG = """\
figures (each: per second, p50/p99 latency of one unit, ratio to the SQL limit at the same conc):
  sql-limit             pgbench, the least SQL of one step lifecycle (6 statements), conc 1, 16 and 64
  sql-set-limit         pgbench, the same 6 statements set-based, each serving a group of 16
                        lifecycles (unnest ... WITH ORDINALITY, FOR NO KEY UPDATE SKIP LOCKED), 2
                        groups in flight (2x16): the limit of grouping on the server. Every
                        grpc-lifecycle row also has its ratio to it (ratio_to_set_limit)
  grpc-lifecycle        the same lifecycle as 6 RPCs of the async client, conc 1, 16 and 64; the
                        calls of concurrent lifecycles batched (the client's default)
  python-workflow       Python workflows of three local steps through the engine
                        (workflowstate.workflows), started and awaited, conc 16; workflows per
                        second, its ratio to grpc-lifecycle conc 16 in the column `ratio`
  grpc-lifecycle-unbatched  conc 16 with batching=False: every call on its own
  grpc-lifecycle-4proc  conc 16 from 4 client processes x 4
  grpc-lifecycle-unary-4proc  the same with batching=False: unary calls from 4 processes, the
                        shape of the TypeScript SDK's and the Pikku adapter's callers
  lease-cycles          acquire + release on kept-open Lease streams: 1w/1k, 16w/4k, 16w/16k
  sql-dispatch-limit    pgbench, remote mode's claim + complete of a due step, 4 clients
  grpc-dispatch         the same over StreamStepTasks: 4 workers, one step in flight each
  sql-dispatch-bulk-limit  pgbench, claim up to 16 due steps in one statement, complete each: 4 clients
  grpc-dispatch-bulk    4 workers, 16 in flight each, bulk: a claim's tasks in one message, their
                        completes in one (latency: one such round)
  step-e2e              set_step_scheduled to the SUCCEEDED event through watch_run, a trivial
                        AsyncWorker, one step at a time: 1srv, or 2srv (the worker on a second server)
  pikku-workflow-pg     16 inline Pikku workflows of two steps at a time (@pikku/core 0.12.84, a
                        Node program, bench/pikku/) on Pikku's own PostgreSQL backend, @pikku/pg
                        0.12.1, in the same PostgreSQL; workflows per second
  pikku-workflow-workflowstate  the same workflows on @workflowstate/pikku against the server;
                        its ratio to pikku-workflow-pg in the column `ratio`. Needs Node.js 20+
                        and npm: the bench installs and builds the program (npm ci, tsc) first

scale (--scale, instead of the figures above):
  sql-limit             conc 16, 32 and 64
  grpc-lifecycle-scale  the lifecycle at conc 16, 32 and 64 against `serve --workers N`, N = 1, a
                        quarter and a half of the cores (2 at least), one server per N; from P client
                        processes (a quarter of the cores), each with conc/P lifecycles over N
                        connections. Shape wN/pPxL: N server processes, P client processes x L.
                        Each server process's pool is 64/N connections (1 to 10).
  For a machine with many cores: how the server scales with --workers. On 2 cores it shows the CPU
  is shared by PostgreSQL, server and clients: a second server process adds little or nothing.

examples:
  python -m bench                        embedded PostgreSQL in a temporary folder, 8 s per figure
  python -m bench --seconds 3 --only sql,lifecycle
  python -m bench --database-url postgresql://postgres@127.0.0.1:5432/postgres --json
  python -m bench --scale --seconds 4
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _groups(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {','.join(GROUPS)}; got {text!r}")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark of workflowstate: starts its own server process and measures it, "
        "and the SQL limit, on one database.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=_positive_float, default=8.0, help="measuring window per figure (default 8)")
    parser.add_argument("--database-url", help="PostgreSQL URL; default: an embedded PostgreSQL in a temporary folder")
    parser.add_argument("--json", action="store_true", help="one JSON line per figure on stdout instead of the table")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--only", type=_groups, default=GROUPS, help=f"a subset of {','.join(GROUPS)}")
    mode.add_argument(
        "--scale", action="store_true", help="the lifecycle against `serve --workers N` for a few N, at conc 16/32/64 (see below)"
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for the server under test, repeatable (e.g. --server-arg=--pool-size=16)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_SECONDS:g} s per figure: checks that the harness works, not the numbers",
    )
    return parser


def _describe(err: BaseException) -> str:
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return f"{type(err).__name__}: {err}" if not isinstance(err, RuntimeError) else str(err)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scale and any(arg.startswith("--workers") for arg in args.server_arg):
        parser.error("--scale sets the server's --workers itself; leave it out of --server-arg")
    # SIGTERM stops the bench as Ctrl-C does: the server under test, the bench's schemas and the
    # embedded PostgreSQL are cleaned up on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings(
        seconds=SMOKE_SECONDS if args.smoke else args.seconds,
        groups=args.only,
        json=args.json,
        server_args=tuple(args.server_arg),
        scale=args.scale,
    )
    try:
        if args.database_url:
            database: contextlib.AbstractContextManager[str] = contextlib.nullcontext(args.database_url)
        else:
            from .database import embedded_database

            print("bench: starting an embedded PostgreSQL in a temporary folder", file=sys.stderr, flush=True)
            database = embedded_database()
        with database as url:
            asyncio.run(run(settings, url))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  # any failure: one line saying why, exit code 1
        print(f"bench: {_describe(err)}", file=sys.stderr)
        return 1
    return 0
