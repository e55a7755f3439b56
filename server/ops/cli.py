"""`workflowstate` command line: `workflowstate serve` runs the server; `runs`, `workflows` and
`leases` (cli_runs.py) operate one through the Python client.

Every flag can also come from a WORKFLOWSTATE_* environment variable (flag wins), so containers
can be configured without a command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import version
from datetime import timedelta
from pathlib import Path
from typing import Any

from .cli_connection import EXIT_CODES_HELP, connection_options
from .cli_filters import certificates_file, positive_number
from .cli_parser import EnvParser
from .cli_admin import add_commands as add_admin_commands
from .migrate_command import add_command as add_migrate_command
from .cli_runs import add_commands as add_operator_commands
from .cli_schedules import add_commands as add_schedule_commands

log = logging.getLogger("workflowstate.server")

# The line `serve` prints once it takes calls; process managers (tests, bench, --workers) wait for it.
READY_PREFIX = "workflowstate listening on "

EPILOG = """\
examples:
  workflowstate serve                      embedded PostgreSQL, listens on 127.0.0.1:50051
  workflowstate migrate --database-url postgresql://...   apply the migrations and exit (a deploy step)
  workflowstate serve --no-migrate --database-url ...      a replica: refuses a schema that lacks migrations
  workflowstate serve --database-url postgresql://user:pass@db:5432/app --listen 0.0.0.0:50051 --auth-tokens tokens.txt
  WORKFLOWSTATE_DATABASE_URL=postgresql://... workflowstate serve
  workflowstate token new --role write     a new token, and its line for the --auth-tokens file
  workflowstate runs list --status failed --since 1d      failed runs of the last day
  workflowstate runs show RUN_ID                           a run, its steps, every attempt and its error
  workflowstate runs cancel RUN_ID --reason "customer asked"
  workflowstate runs delete --status completed --until 30d --yes
  workflowstate workflows | leases                         runs per workflow and status; leases held

The operator commands (runs, workflows, leases) reach the server at --target (WORKFLOWSTATE_TARGET,
default 127.0.0.1:50051) with --token (WORKFLOWSTATE_TOKEN); `workflowstate runs list --help` says more.

""" + EXIT_CODES_HELP


_positive_float = positive_number(float, "number")
_positive_int = positive_number(int, "whole number")


def _at_least_one_second(text: str) -> float:
    """An argparse type: a number of seconds, at least 1 (the shortest interval any server takes)."""
    seconds = _positive_float(text)
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (second), not {text!r}")
    return seconds


def _token_file(text: str) -> dict[Any, Any]:
    """An argparse type: the --auth-tokens file, read and checked now, so a bad one stops the start."""
    from ..rpc.tokens import TokenFileError, read_token_file  # the standard library only

    try:
        return read_token_file(Path(text))
    except TokenFileError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _schema_name(text: str) -> str:
    """An argparse type: the --schema name, checked now, so a bad one stops the start (exit 2)."""
    from ..db.schema_name import check_schema_name  # the standard library only

    try:
        return check_schema_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"
# The second line `serve` prints, after the ready line: where the dashboard is, or why it is not.
DASHBOARD_PREFIX = "workflowstate dashboard "


def _http_listen(text: str) -> str:
    """An argparse type: host:port for the dashboard (port 0 picks one), or off."""
    text = text.strip()
    if text.lower() == "off":
        return "off"
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535 or (host.startswith("[") != host.endswith("]")):
        raise argparse.ArgumentTypeError(f"must be host:port (port 0 picks one) or off, not {text!r}")
    return text


def _http_allowed_hosts(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated names (name or name:port) the dashboard also answers."""
    from ..web.hosts import BadHostName, parse_allowed_host  # the standard library only

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in names:
        try:
            parse_allowed_host(name)
        except BadHostName as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = EnvParser(
        prog="workflowstate",
        description="workflowstate: a gRPC state server for durable workflows, backed by PostgreSQL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('workflowstate')}", help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the gRPC server",
        description="Run the gRPC server. Without a database URL an embedded PostgreSQL is started, "
        "with its data kept in --data-dir across restarts. Each flag also reads WORKFLOWSTATE_<FLAG> "
        "(for example WORKFLOWSTATE_DATABASE_URL).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--listen", default="127.0.0.1:50051", help="host:port to listen on; port 0 picks one")
    serve.add_argument("--database-url", default=None, help="PostgreSQL URL; unset starts the embedded PostgreSQL")
    serve.add_argument("--no-embedded", action="store_true", default=False, help="refuse to start without --database-url instead of starting the embedded PostgreSQL (containers)")
    serve.add_argument("--schema", type=_schema_name, default="workflows", help="PostgreSQL schema for the tables: 1 to 63 lower-case letters, digits and '_', not starting with a digit")
    serve.add_argument("--no-migrate", action="store_true", default=False, help="apply no migration at start (replicas, when a deploy step runs `workflowstate migrate`): a schema that lacks one stops the start, naming the command to run")
    serve.add_argument("--data-dir", type=Path, default=None, help="embedded PostgreSQL data folder (default: per-user data dir)")
    serve.add_argument("--max-payload-bytes", type=_positive_int, default=1024 * 1024, help="largest JSON payload per field, measured as PostgreSQL stores it (numbers without exponents)")
    serve.add_argument("--max-reply-bytes", type=_positive_int, default=64 * 1024 * 1024, help="most bytes one reply may carry: a list page ends early with its next_page_token, a Batch answers the operations past it RESOURCE_EXHAUSTED without running them, any other reply past it is RESOURCE_EXHAUSTED; at least what one run may carry (about 8 times --max-payload-bytes, plus 2.1 MB)")
    serve.add_argument("--batch-max-operations", type=_positive_int, default=1000, help="most operations one Batch call may carry; a larger batch is refused whole with INVALID_ARGUMENT")
    serve.add_argument("--pool-size", type=_positive_int, default=10, help="most database connections")
    serve.add_argument("--pool-timeout", type=_positive_float, default=5.0, help="seconds a call waits for a connection before RESOURCE_EXHAUSTED (the server is overloaded)")
    serve.add_argument("--group-max-operations", type=_positive_int, default=64, help="most concurrent operations of one kind (GetRun, CreateRun...) sharing one database statement and commit; each is answered only once that commit is done")
    serve.add_argument("--group-max-bytes", type=_positive_int, default=1024 * 1024, help="most payload bytes in one grouped statement; a larger operation runs alone")
    serve.add_argument("--group-max-in-flight", type=_positive_int, default=2, help="statements of one kind running at once; operations arriving while they all run form the next group (an operation arriving when fewer run goes at once)")
    # Tests only: hold operations until this many of a kind wait (or 0.1 s passed), so that groups form for certain.
    serve.add_argument("--test-group-hold", type=_positive_int, default=1, help=argparse.SUPPRESS)
    serve.add_argument("--test-group-hold-seconds", type=_positive_float, default=0.1, help=argparse.SUPPRESS)
    serve.add_argument("--startup-timeout", type=_positive_float, default=30.0, help="seconds to wait for the database at start-up")
    serve.add_argument("--lease-max-ttl", type=_positive_float, default=300.0, help="longest lease ttl a client may ask for, in seconds")
    serve.add_argument("--lease-poll-interval", type=_positive_float, default=1.0, help="longest a lease waiter sleeps before looking again unwoken, in seconds")
    serve.add_argument("--task-lease-max", type=_positive_float, default=600.0, help="longest task lease a worker may ask for, in seconds")
    serve.add_argument("--dispatch-poll-interval", type=_positive_float, default=1.0, help="longest a worker stream or event reader waits before looking again unwoken, and the period of the sweeper of lost workers' tasks, in seconds")
    serve.add_argument("--event-interval", type=_positive_float, default=0.05, help="seconds between two looks at the run events table while WatchRun or StreamRunEvents readers wait: the fallback to NOTIFY, which wakes them at once (the wake-up delay while the LISTEN connection is down)")
    serve.add_argument("--event-retention", type=_positive_float, default=None, help="seconds run events are kept (unset: for ever); WatchRun and StreamRunEvents cannot resume after a deleted event")
    serve.add_argument("--retention-interval", type=_positive_float, default=60.0, help="seconds between two applications of the retention policies (SetRetentionPolicy), each erasing expired runs in bounded batches")
    serve.add_argument("--schedule-poll-interval", type=_positive_float, default=1.0, help="longest the loop that fires schedules sleeps, in seconds: a schedule created or resumed through another server fires from then at the latest")
    serve.add_argument("--schedule-min-interval", type=_at_least_one_second, default=60.0, help="shortest interval of an interval schedule, in seconds (at least 1); a shorter one is refused with INVALID_ARGUMENT (cron fires at most once a minute)")
    serve.add_argument("--max-schedules", type=_positive_int, default=1000, help="most schedules the schema may hold (paused ones count), over every server sharing it; CreateSchedule past it is refused with RESOURCE_EXHAUSTED")
    serve.add_argument("--max-streams-per-token", type=_positive_int, default=1000, help="most streams (WatchRun, StreamRunEvents, StreamStepTasks, Lease) one token may hold open on this server, with --auth-tokens; one more is refused with RESOURCE_EXHAUSTED")
    serve.add_argument("--max-streams-per-peer", type=_positive_int, default=200, help="most streams one peer host (IP address; every Unix-socket caller is one) may hold open on this server, without --auth-tokens; one more is refused with RESOURCE_EXHAUSTED")
    serve.add_argument("--grace-period", type=_positive_float, default=10.0, help="seconds in-flight calls get on shutdown")
    serve.add_argument("--health-interval", type=_positive_float, default=5.0, help="seconds between database health pings")
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain; with --tls-key enables TLS")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM private key")
    serve.add_argument("--tls-client-ca", type=certificates_file, default=None, help="PEM CA certificates: with TLS, require every client to present a certificate they sign (mutual TLS)")
    serve.add_argument("--auth-tokens", type=_token_file, default=None, metavar="FILE", help="file of '<sha256 of a token> <role>' lines (roles: read, worker, write, admin); calls must then send 'authorization: Bearer <token>' (see `workflowstate token new`)")
    serve.add_argument("--http-listen", type=_http_listen, default=None, metavar="HOST:PORT|off", help=f"host:port of the web dashboard, or off; port 0 picks one (default: {DEFAULT_HTTP_LISTEN}, left off with a warning when that port is taken); with --workers N only the first worker serves it%(default).0s")  # the .0s: says no "(default: None)"
    serve.add_argument("--http-allowed-hosts", type=_http_allowed_hosts, default=(), metavar="NAME[:PORT],...", help="more names the dashboard answers, comma-separated (a reverse proxy's, a DNS name of this machine); it always answers its --http-listen host, localhost, 127.0.0.1 and [::1] on its port, and refuses any other Host with 421 (DNS rebinding)%(default).0s")
    serve.add_argument("--http-allow-unauthenticated-network", action="store_true", default=False, help="serve the dashboard on an address beyond loopback without --auth-tokens or --tls-client-ca: anyone who reaches it may cancel and delete every run (logged as a warning at start); without this flag such a start is refused")
    serve.add_argument("--metrics-listen", default=None, help="host:port to serve Prometheus metrics on, at /metrics (unset: none); with --workers N, worker i uses port + i")
    serve.add_argument("--workers", type=_positive_int, default=1, help="server processes sharing the port (about one core each)")
    serve.add_argument("--reuse-port", action="store_true", default=False, help="share the listen port with servers already listening there (SO_REUSEPORT); without it, a port in use is refused")
    serve.add_argument("--stop-on-stdin-eof", action="store_true", default=False, help="stop (gracefully, as on SIGTERM) when standard input reaches end of file; `serve --workers N` starts its workers so, on a pipe only it holds, so that they stop when it ends however it ends")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="debug also logs every request")
    serve.add_argument("--log-format", default="auto", choices=["auto", "json", "text"], help="log lines on stderr: JSON objects, or text; auto is text at a terminal, JSON elsewhere")
    serve.read_environment()
    # The engine's own options are parsed by its command (workflowstate.workflows), which the
    # client's base install also runs as `python -m workflowstate.workflows`.
    commands.add_parser(
        "engine",
        help="drive the runs of the durable workflows a Python module defines (a workflow engine)",
        description="Drive the runs of the durable workflows a Python module defines: "
        "see `workflowstate engine --help` for its options.",
        add_help=False,
        prefix_chars="\0",
    ).add_argument("engine_args", nargs=argparse.REMAINDER)
    token = commands.add_parser("token", help="make bearer tokens for --auth-tokens", description="Make bearer tokens for --auth-tokens.")
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    new = token_commands.add_parser(
        "new",
        help="print a new token (once) and its line for the --auth-tokens file",
        description="Print a new random token, shown only this once, and the line that gives it ROLE in the "
        "--auth-tokens file (the file holds the token's SHA-256, never the token).",
    )
    new.add_argument("--role", required=True, choices=["read", "worker", "write", "admin"], help="what the token may do")
    new.add_argument("--comment", default="", help="a note put after the line, e.g. who holds the token")
    add_migrate_command(commands, _schema_name)
    connection = connection_options()
    add_operator_commands(commands, connection)
    add_admin_commands(commands, connection)
    add_schedule_commands(commands, connection)
    return parser


def _new_token(args: argparse.Namespace) -> int:
    from ..rpc.tokens import Role, new_token, token_line  # the standard library only

    token = new_token()
    print("# the token, shown only now; clients send it as token=... or WORKFLOWSTATE_TOKEN:")
    print(token)
    print("# its line for the --auth-tokens file (then restart the server):")
    print(token_line(token, Role(args.role), " ".join(args.comment.split())))
    return 0


def _serve(args: argparse.Namespace, argv: list[str]) -> int:
    from . import logs  # the standard library only: it works without the server extras

    log_format = args.log_format if args.log_format != "auto" else ("text" if sys.stderr.isatty() else "json")
    # Before gRPC is imported: in JSON mode its C core's own lines on stderr become log records too.
    with logs.logging_to_stderr(args.log_level, log_format):
        return _serve_logged(args, argv)


def _serve_logged(args: argparse.Namespace, argv: list[str]) -> int:
    if args.stop_on_stdin_eof:
        from .stdin_watch import stop_when_stdin_closes

        stop_when_stdin_closes()  # first: a parent may end while this worker still connects
    try:
        from . import app, embedded, event_loop
        from .config import ServerConfig
        from .dashboard_exposure import open_dashboard_refusal
        from .ports import CannotListen, refuse_if_in_use
        from ..core.errors import Unavailable
        from ..db.migrate import SchemaBehind
        from ..dispatch.dispatcher import DispatchSettings
        from ..leases.manager import LeaseSettings
        from ..db.coalescer import GroupSettings
        from ..db.database import PoolSettings
        from ..rpc.reply_bounds import max_item_bytes
        from ..rpc.stream_caps import StreamLimits
        from ..schedules.limits import ScheduleLimits
    except ImportError as err:
        print(f"workflowstate serve needs the server extras: pip install 'workflowstate[server]' ({err})", file=sys.stderr)
        return 2

    config = ServerConfig(
        listen=args.listen,
        database_url=args.database_url,
        schema=args.schema,
        data_dir=args.data_dir,
        max_payload_bytes=args.max_payload_bytes,
        max_reply_bytes=args.max_reply_bytes,
        batch_max_operations=args.batch_max_operations,
        pool=PoolSettings(min_size=min(2, args.pool_size), max_size=args.pool_size, acquire_timeout=args.pool_timeout),
        groups=GroupSettings(
            max_operations=args.group_max_operations,
            max_bytes=args.group_max_bytes,
            max_in_flight=args.group_max_in_flight,
            hold_for=args.test_group_hold,
            hold_seconds=args.test_group_hold_seconds,
        ),
        leases=LeaseSettings(max_ttl=timedelta(seconds=args.lease_max_ttl), poll_interval=args.lease_poll_interval),
        dispatch=DispatchSettings(
            max_task_lease=timedelta(seconds=args.task_lease_max),
            default_task_lease=min(DispatchSettings.default_task_lease, timedelta(seconds=args.task_lease_max)),
            poll_interval=args.dispatch_poll_interval,
        ),
        event_interval=args.event_interval,
        event_retention=timedelta(seconds=args.event_retention) if args.event_retention is not None else None,
        retention_interval=args.retention_interval,
        schedule_poll_interval=args.schedule_poll_interval,
        schedule_limits=ScheduleLimits(min_interval=timedelta(seconds=args.schedule_min_interval), max_schedules=args.max_schedules),
        streams=StreamLimits(per_token=args.max_streams_per_token, per_peer_host=args.max_streams_per_peer),
        grace_period=args.grace_period,
        apply_migrations=not args.no_migrate,
        startup_timeout=args.startup_timeout,
        health_interval=args.health_interval,
        reuse_port=args.reuse_port,
        metrics_listen=args.metrics_listen,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        auth_tokens=args.auth_tokens,
        http_listen=None if args.http_listen == "off" else (args.http_listen or DEFAULT_HTTP_LISTEN),
        http_listen_required=args.http_listen is not None and args.http_listen != "off",
        http_allowed_hosts=args.http_allowed_hosts,
        http_allow_unauthenticated_network=args.http_allow_unauthenticated_network,
    )
    if config.tls_client_ca is not None and (config.tls_cert is None or config.tls_key is None):
        print("workflowstate: --tls-client-ca needs TLS: pass --tls-cert and --tls-key too", file=sys.stderr)
        return 2
    refusal = open_dashboard_refusal(config)
    if refusal is not None:
        print(f"workflowstate: {refusal}", file=sys.stderr)
        return 2
    if config.max_reply_bytes < max_item_bytes(config.max_payload_bytes):
        print(
            f"workflowstate: --max-reply-bytes {config.max_reply_bytes} is smaller than one run may be with --max-payload-bytes "
            f"{config.max_payload_bytes}: pass at least {max_item_bytes(config.max_payload_bytes)}",
            file=sys.stderr,
        )
        return 2
    if config.database_url is None and args.no_embedded:
        print("workflowstate: no database URL: pass --database-url or set WORKFLOWSTATE_DATABASE_URL", file=sys.stderr)
        return 2

    def ready(address: str, dashboard: str | None) -> None:
        print(f"{READY_PREFIX}{address}", flush=True)
        if dashboard is not None:
            print(f"{DASHBOARD_PREFIX}{dashboard}", flush=True)

    try:
        if not config.reuse_port:
            refuse_if_in_use(config.listen)  # before the database is started or migrated
        if config.http_listen_required and config.http_listen is not None:
            refuse_if_in_use(config.http_listen, flag="--http-listen")
        database_url = config.database_url or embedded.start_embedded_postgres(config.data_dir or embedded.default_data_dir())
        if args.workers > 1:
            from .processes import run_workers

            return run_workers(args.workers, config.listen, database_url, argv, metrics_listen=config.metrics_listen, http_listen=config.http_listen)
        event_loop.run(app.serve(config, database_url, on_ready=ready))
    except (Unavailable, CannotListen, SchemaBehind) as err:
        log.error("cannot start", extra={"reason": str(err)})
        print(f"workflowstate: cannot start: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        log.exception("cannot start")
        print(f"workflowstate: cannot start: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args, argv)
    if args.command == "token":
        return _new_token(args)
    if args.command == "engine":
        from workflowstate.workflows._command import main as engine_main  # the client's, imported only to run it

        return engine_main(args.engine_args, prog="workflowstate engine")
    if hasattr(args, "handler"):  # the operator commands, through the client
        return int(args.handler(args))
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
