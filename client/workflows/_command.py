"""``python -m workflowstate.workflows MODULE...``: an engine process for the workflows of some modules.

Each MODULE is imported (``package.module``, or ``package.module:name`` for one workflow); every
``Workflow`` it defines at top level is driven. The engine runs until SIGINT or SIGTERM (drain;
a second one stops at once). Connection options also come from ``WORKFLOWSTATE_TARGET`` and
``WORKFLOWSTATE_TOKEN``, as the operator commands read them. ``--metrics-listen`` serves the
engine's Prometheus metrics; it needs prometheus_client (installed with the server), imported
only then.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

from workflowstate.client import AsyncWorkflowStateClient

from ._definition import Workflow
from ._engine import WorkflowEngine
from ._metrics import NO_METRICS, EngineMetrics


def _positive_seconds(text: str) -> timedelta:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return timedelta(seconds=seconds)


def _listen_address(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT with a port from 0 to 65535, got {text!r}")
    return text


def parser(prog: str = "python -m workflowstate.workflows") -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog=prog,
        description="Drive the runs of the workflows defined in MODULEs (a WorkflowEngine process).",
    )
    command.add_argument("modules", nargs="+", metavar="MODULE", help="module[:name] defining @workflow functions")
    command.add_argument("--target", default=os.environ.get("WORKFLOWSTATE_TARGET", "127.0.0.1:50051"),
                         help="the server's host:port (env WORKFLOWSTATE_TARGET; default: %(default)s)")  # fmt: skip
    command.add_argument("--token", default=None, help="bearer token (env WORKFLOWSTATE_TOKEN, which the client reads itself)")
    command.add_argument("--tls", action="store_true", help="connect with TLS, trusting the system's root certificates")
    command.add_argument("--lease-ttl", type=_positive_seconds, default=timedelta(seconds=10),
                         help="seconds a run's lease outlives its engine (default: 10)")  # fmt: skip
    command.add_argument("--stalled-after", type=_positive_seconds, default=timedelta(seconds=15),
                         help="seconds without a change before a run counts as stalled and is taken over (default: 15)")  # fmt: skip
    command.add_argument("--scan-interval", type=_positive_seconds, default=timedelta(seconds=5),
                         help="seconds between two scans for stalled runs (default: 5)")  # fmt: skip
    command.add_argument("--poll-interval", type=_positive_seconds, default=timedelta(seconds=5),
                         help="seconds a waiting step goes without an event before it reads its state again (default: 5)")  # fmt: skip
    command.add_argument("--engine-id", default=None, help="the name the engine holds run leases under (default: host:pid)")
    command.add_argument("--metrics-listen", type=_listen_address, default=None, metavar="HOST:PORT",
                         help="serve the engine's Prometheus metrics at http://HOST:PORT/metrics (port 0 picks one, logged); "
                         "needs prometheus_client, installed with the server (unset: none)")  # fmt: skip
    command.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return command


def workflows_of(specs: Sequence[str]) -> list[Workflow]:
    """The workflows named by ``module`` or ``module:name`` specs; ValueError when one names none."""
    found: list[Workflow] = []
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        module = importlib.import_module(module_name)
        if attribute:
            chosen = getattr(module, attribute, None)
            if not isinstance(chosen, Workflow):
                raise ValueError(f"{spec} is not a @workflow function")
            found.append(chosen)
            continue
        defined = [value for value in vars(module).values() if isinstance(value, Workflow)]
        if not defined:
            raise ValueError(f"module {module_name} defines no @workflow function")
        found.extend(defined)
    return found


def _served_metrics(command: argparse.ArgumentParser, listen: str | None) -> EngineMetrics:
    """The engine's metrics: served over HTTP on ``listen`` when given, else not counted."""
    if listen is None:
        return NO_METRICS
    try:
        from .prometheus import PrometheusEngineMetrics  # only here: the base install has no prometheus_client
    except ImportError as error:
        command.error(f"--metrics-listen needs prometheus_client ({error}): install workflowstate[server] or prometheus-client")
    metrics = PrometheusEngineMetrics()
    try:
        metrics.serve(listen)
    except OSError as error:
        command.error(f"--metrics-listen {listen}: cannot listen there: {error}")
    return metrics


async def _serve(args: argparse.Namespace, workflows: list[Workflow], metrics: EngineMetrics) -> None:
    async with AsyncWorkflowStateClient(args.target, tls=args.tls, token=args.token) as client:
        engine = WorkflowEngine(
            client, workflows, lease_ttl=args.lease_ttl, stalled_after=args.stalled_after, scan_interval=args.scan_interval,
            poll_interval=args.poll_interval, engine_id=args.engine_id, metrics=metrics,
        )  # fmt: skip
        await engine.run()


def main(argv: Sequence[str] | None = None, prog: str = "python -m workflowstate.workflows") -> int:
    """Run an engine for the workflows of the modules named in argv; `prog` names the command in its
    help and errors (``workflowstate engine`` runs this too)."""
    command = parser(prog)
    args = command.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.getcwd())  # modules of the current folder, as `python -m` finds them
    try:
        workflows = workflows_of(args.modules)
    except (ImportError, ValueError) as error:
        command.error(str(error))
    asyncio.run(_serve(args, workflows, _served_metrics(command, args.metrics_listen)))
    return 0
