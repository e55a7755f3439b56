"""What every operator command shares: where the server is, how to reach it, and what the exit code says.

Exit codes: 0 done; 1 the server refused (its code and message are printed) or a bulk action
was not confirmed; 2 bad usage; 3 the server could not be reached (UNAVAILABLE, DEADLINE_EXCEEDED).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from datetime import timedelta

import grpc

from workflowstate.client import WorkflowStateClient, WorkflowStateError

from .cli_filters import certificates_file, positive_number
from .cli_parser import EnvParser

if TYPE_CHECKING:
    # What EnvParser.add_subparsers returns, to add commands to: argparse keeps the class private,
    # and only typeshed makes it generic (so the alias exists for the type checker only).
    Commands = argparse._SubParsersAction[EnvParser]

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

EXIT_CODES_HELP = """\
exit codes:
  0  done
  1  the server refused (its code and message are printed, e.g. NOT_FOUND), or a bulk
     action was not confirmed (--yes)
  2  bad usage: unknown command, bad option or value
  3  the server could not be reached (UNAVAILABLE or DEADLINE_EXCEEDED): is --target right?
"""

_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)

# The options read from the environment: the connection's, never an answer such as --yes.
CONNECTION_OPTIONS = ("--target", "--token", "--tls", "--tls-ca", "--timeout")


_seconds = positive_number(float, "number of seconds")


def _pem_file(text: str) -> bytes:
    return certificates_file(text).read_bytes()


def connection_options() -> EnvParser:
    """A parent parser with the connection's options, added to every operator command."""
    parent = EnvParser(add_help=False)
    group = parent.add_argument_group("connection (each also read from WORKFLOWSTATE_<OPTION>)")
    group.add_argument("--target", default="127.0.0.1:50051", help="the server's host:port (default: %(default)s)")
    group.add_argument("--token", default=None, help="bearer token, for a server started with --auth-tokens")
    group.add_argument("--tls", action="store_true", default=False, help="connect with TLS, trusting the system's root certificates")
    group.add_argument("--tls-ca", type=_pem_file, default=None, metavar="FILE", help="connect with TLS, trusting the CA certificates in this PEM file")
    group.add_argument("--timeout", type=_seconds, default=30.0, help="seconds each call may take (default: %(default)s)")
    return parent


def open_client(args: argparse.Namespace) -> WorkflowStateClient:
    """A client for the options given; ValueError for a token no header can carry."""
    tls: bool | grpc.ChannelCredentials = False
    if args.tls_ca is not None:
        tls = grpc.ssl_channel_credentials(root_certificates=args.tls_ca)
    elif args.tls:
        tls = True
    # No batching: the commands make one call at a time, and a lone call should be the plain RPC.
    return WorkflowStateClient(args.target, tls=tls, token=args.token or None, timeout=timedelta(seconds=args.timeout), batching=False)


def error_line(err: WorkflowStateError) -> str:
    return f"workflowstate: {err.status.name}: {err.message}"


def exit_code_of(err: WorkflowStateError) -> int:
    return EXIT_UNREACHABLE if err.status in _UNREACHABLE else EXIT_REFUSED


def fail(message: str, code: int = EXIT_REFUSED) -> int:
    print(f"workflowstate: {message}", file=sys.stderr, flush=True)
    return code


def with_client(command: Callable[[WorkflowStateClient, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`command` run with a client, a refusal of the server turned into its message and exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            client = open_client(args)
        except ValueError as err:
            return fail(f"--token: {err}", EXIT_USAGE)
        try:
            with client:
                return command(client, args)
        except WorkflowStateError as err:
            code = exit_code_of(err)
            suffix = f" (target {args.target})" if code == EXIT_UNREACHABLE else ""
            print(error_line(err) + suffix, file=sys.stderr, flush=True)
            return code
        except BrokenPipeError:  # `workflowstate runs list | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush fails no more
            return EXIT_OK

    return run


def command_parser(commands: Commands, name: str, connection: EnvParser, help: str, description: str) -> EnvParser:
    """An operator command under `commands` (a subparsers action), with the connection's options."""
    return commands.add_parser(
        name, parents=[connection], help=help, description=description, epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def finish_command(parser: Any, command: Callable[[WorkflowStateClient, argparse.Namespace], int], json_help: str = "one JSON object per line, for scripts") -> None:
    """Add --json, read the connection's variables, and make `command` the parser's handler."""
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.read_environment(CONNECTION_OPTIONS)
    parser.set_defaults(handler=with_client(command))
