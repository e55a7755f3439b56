"""`workflowstate` command line: `workflowstate serve` runs the server.

Every flag can also come from a WORKFLOWSTATE_* environment variable (flag wins), so containers
can be configured without a command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("workflowstate.server")

# The line `serve` prints once it takes calls; process managers (tests, bench, --workers) wait for it.
READY_PREFIX = "workflowstate listening on "

EPILOG = """\
examples:
  workflowstate serve                      embedded PostgreSQL, listens on 127.0.0.1:50051
  workflowstate serve --database-url postgresql://user:pass@db:5432/app --listen 0.0.0.0:50051 --auth-tokens tokens.txt
  WORKFLOWSTATE_DATABASE_URL=postgresql://... workflowstate serve
  workflowstate token new --role write     a new token, and its line for the --auth-tokens file
"""


ENV_PREFIX = "WORKFLOWSTATE_"


def _positive(kind: type[int] | type[float], noun: str) -> Callable[[str], Any]:
    """An argparse type: a positive `kind`, with the same messages for a flag and its variable."""

    def check(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive {noun}, not {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return check


_positive_float = _positive(float, "number")
_positive_int = _positive(int, "whole number")


def _token_file(text: str) -> dict[Any, Any]:
    """An argparse type: the --auth-tokens file, read and checked now, so a bad one stops the start."""
    from ..rpc.tokens import TokenFileError, read_token_file  # the standard library only

    try:
        return read_token_file(Path(text))
    except TokenFileError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _certificates_file(text: str) -> Path:
    """An argparse type: a readable file of PEM certificates."""
    path = Path(text)
    try:
        content = path.read_bytes()
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {err.strerror or err}") from None
    if b"-----BEGIN CERTIFICATE-----" not in content:
        raise argparse.ArgumentTypeError(f"{path} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
    return path


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _switch(text: str) -> bool:
    """The value of an on/off flag's variable (the flag itself takes no value)."""
    if text.strip().lower() in _TRUE + _FALSE:
        return text.strip().lower() in _TRUE
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(repr(word) for word in _TRUE + _FALSE)}, not {text!r}")


class _FromEnv:
    """A flag's default taken from its variable, checked after parsing, like the flag would be.

    Not a str: argparse would convert a str default itself and name the flag in its errors, and
    would do so before --help, which must work whatever the environment holds.
    """

    def __init__(self, variable: str, text: str) -> None:
        self.variable = variable
        self.text = text

    def __str__(self) -> str:
        return f"{self.text!r} from {self.variable}"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose options default to their WORKFLOWSTATE_<OPTION> variable, with the
    option's own checks and messages naming the variable (subparsers are of this class too)."""

    def read_environment(self) -> None:
        """Call once every option is added."""
        for action in self._actions:
            if not action.option_strings or action.default == argparse.SUPPRESS:
                continue
            variable = ENV_PREFIX + action.option_strings[0].lstrip("-").replace("-", "_").upper()
            if variable in os.environ:
                action.default = _FromEnv(variable, os.environ[variable])

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]  # argparse's signature
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            if isinstance(value, _FromEnv):
                setattr(namespace, action.dest, self._from_env(action, value))
        return namespace, extras

    def _from_env(self, action: argparse.Action, value: _FromEnv) -> object:
        convert = _switch if isinstance(action, argparse._StoreTrueAction) else (action.type or str)
        try:
            converted = convert(value.text)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
            self.error(f"{value.variable}: {err}")
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(repr(choice) for choice in action.choices)
            self.error(f"{value.variable}: invalid choice: {value.text!r} (choose from {choices})")
        return converted


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workflowstate",
        description="workflowstate: a gRPC state server for durable workflows, backed by PostgreSQL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    serve.add_argument("--schema", default="workflows", help="PostgreSQL schema for the tables")
    serve.add_argument("--data-dir", type=Path, default=None, help="embedded PostgreSQL data folder (default: per-user data dir)")
    serve.add_argument("--max-payload-bytes", type=_positive_int, default=1024 * 1024, help="largest JSON payload per field")
    serve.add_argument("--batch-max-operations", type=_positive_int, default=1000, help="most operations one Batch call may carry; a larger batch is refused whole with INVALID_ARGUMENT")
    serve.add_argument("--pool-size", type=_positive_int, default=10, help="most database connections")
    serve.add_argument("--pool-timeout", type=_positive_float, default=5.0, help="seconds a call waits for a connection before RESOURCE_EXHAUSTED (the server is overloaded)")
    serve.add_argument("--startup-timeout", type=_positive_float, default=30.0, help="seconds to wait for the database at start-up")
    serve.add_argument("--lease-max-ttl", type=_positive_float, default=300.0, help="longest lease ttl a client may ask for, in seconds")
    serve.add_argument("--lease-poll-interval", type=_positive_float, default=1.0, help="longest a lease waiter sleeps before looking again unwoken, in seconds")
    serve.add_argument("--task-lease-max", type=_positive_float, default=600.0, help="longest task lease a worker may ask for, in seconds")
    serve.add_argument("--dispatch-poll-interval", type=_positive_float, default=1.0, help="longest a worker stream or event reader waits before looking again unwoken, and the period of the sweeper of lost workers' tasks, in seconds")
    serve.add_argument("--event-interval", type=_positive_float, default=0.05, help="seconds between two looks at the run events table while WatchRun or StreamRunEvents readers wait (their wake-up delay)")
    serve.add_argument("--event-retention", type=_positive_float, default=None, help="seconds run events are kept (unset: for ever); WatchRun and StreamRunEvents cannot resume after a deleted event")
    serve.add_argument("--retention-interval", type=_positive_float, default=60.0, help="seconds between two applications of the retention policies (SetRetentionPolicy), each erasing expired runs in bounded batches")
    serve.add_argument("--grace-period", type=_positive_float, default=10.0, help="seconds in-flight calls get on shutdown")
    serve.add_argument("--health-interval", type=_positive_float, default=5.0, help="seconds between database health pings")
    serve.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain; with --tls-key enables TLS")
    serve.add_argument("--tls-key", type=Path, default=None, help="PEM private key")
    serve.add_argument("--tls-client-ca", type=_certificates_file, default=None, help="PEM CA certificates: with TLS, require every client to present a certificate they sign (mutual TLS)")
    serve.add_argument("--auth-tokens", type=_token_file, default=None, metavar="FILE", help="file of '<sha256 of a token> <role>' lines (roles: read, worker, write, admin); calls must then send 'authorization: Bearer <token>' (see `workflowstate token new`)")
    serve.add_argument("--metrics-listen", default=None, help="host:port to serve Prometheus metrics on, at /metrics (unset: none); with --workers N, worker i uses port + i")
    serve.add_argument("--workers", type=_positive_int, default=1, help="server processes sharing the port (about one core each)")
    serve.add_argument("--reuse-port", action="store_true", default=False, help="share the listen port with servers already listening there (SO_REUSEPORT); without it, a port in use is refused")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="debug also logs every request")
    serve.add_argument("--log-format", default="auto", choices=["auto", "json", "text"], help="log lines on stderr: JSON objects, or text; auto is text at a terminal, JSON elsewhere")
    serve.read_environment()
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
    try:
        from . import app, embedded
        from .config import ServerConfig
        from .ports import CannotListen, refuse_if_in_use
        from ..core.errors import Unavailable
        from ..dispatch.dispatcher import DispatchSettings
        from ..leases.manager import LeaseSettings
        from ..db.database import PoolSettings
    except ImportError as err:
        print(f"workflowstate serve needs the server extras: pip install 'workflowstate[server]' ({err})", file=sys.stderr)
        return 2

    config = ServerConfig(
        listen=args.listen,
        database_url=args.database_url,
        schema=args.schema,
        data_dir=args.data_dir,
        max_payload_bytes=args.max_payload_bytes,
        batch_max_operations=args.batch_max_operations,
        pool=PoolSettings(min_size=min(2, args.pool_size), max_size=args.pool_size, acquire_timeout=args.pool_timeout),
        leases=LeaseSettings(max_ttl=timedelta(seconds=args.lease_max_ttl), poll_interval=args.lease_poll_interval),
        dispatch=DispatchSettings(
            max_task_lease=timedelta(seconds=args.task_lease_max),
            default_task_lease=min(DispatchSettings.default_task_lease, timedelta(seconds=args.task_lease_max)),
            poll_interval=args.dispatch_poll_interval,
        ),
        event_interval=args.event_interval,
        event_retention=timedelta(seconds=args.event_retention) if args.event_retention is not None else None,
        retention_interval=args.retention_interval,
        grace_period=args.grace_period,
        startup_timeout=args.startup_timeout,
        health_interval=args.health_interval,
        reuse_port=args.reuse_port,
        metrics_listen=args.metrics_listen,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        auth_tokens=args.auth_tokens,
    )
    if config.tls_client_ca is not None and (config.tls_cert is None or config.tls_key is None):
        print("workflowstate: --tls-client-ca needs TLS: pass --tls-cert and --tls-key too", file=sys.stderr)
        return 2
    if config.database_url is None and args.no_embedded:
        print("workflowstate: no database URL: pass --database-url or set WORKFLOWSTATE_DATABASE_URL", file=sys.stderr)
        return 2

    def ready(address: str) -> None:
        print(f"{READY_PREFIX}{address}", flush=True)

    try:
        if not config.reuse_port:
            refuse_if_in_use(config.listen)  # before the database is started or migrated
        database_url = config.database_url or embedded.start_embedded_postgres(config.data_dir or embedded.default_data_dir())
        if args.workers > 1:
            from .processes import run_workers

            return run_workers(args.workers, config.listen, database_url, argv, metrics_listen=config.metrics_listen)
        asyncio.run(app.serve(config, database_url, on_ready=ready))
    except (Unavailable, CannotListen) as err:
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
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
