"""Assemble and run the gRPC server: store, servicer, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import shutil
import signal
import tempfile
import uuid
from collections.abc import Callable, Collection
from pathlib import Path

import grpc
import psycopg
from psycopg.rows import dict_row
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

from .config import ServerConfig
from .dashboard_exposure import open_dashboard_refusal, warn_if_open as warn_if_dashboard_open
from ..dispatch.dispatcher import TaskDispatcher
from ..dispatch.reports import WorkerReports
from ..dispatch.store import TaskStore
from ..dispatch.workers import ServerIdentity, WorkerStreams
from ..events.watchers import EventWatchers
from .health import DatabaseHealth
from ..leases.store import LeaseStore
from ..leases.manager import LeaseManager
from .metrics import Metrics
from .ports import CannotListen, is_loopback, refuse_if_in_use
from .stop_deadline import StopDeadline
from ..db.notifications import Notifications
from ..rpc.auth import TokenAuth
from ..rpc.internal_socket import InternalSocketGuard
from ..rpc.reply_bounds import send_limit
from ..rpc.servicer import WorkflowStateServicer
from ..rpc.stream_caps import StreamCaps
from ..rpc.task_session import TaskSession
from ..core.errors import Unavailable
from ..db.database import Database
from ..db.driver_errors import first_line
from ..db.migrate import require_migrated
from ..retention.purger import RetentionPurger
from ..retention.store import RetentionStore
from ..schedules.firer import ScheduleFirer
from ..schedules.store import ScheduleStore
from ..state.catalog import RunCatalog
from ..state.store import StateStore
from ..state.versions import VersionStore
from ..core.supervisor import Supervisor
from ..web.app import Dashboard, bind as bind_http
from ..web.settings import WebSettings

log = logging.getLogger("workflowstate.server")

SERVICE_NAME = pb.SERVICE_DESCRIPTOR.full_name


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None and config.tls_key is None:
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise SystemExit("TLS needs both --tls-cert and --tls-key")
    if config.tls_client_ca is None:
        return grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())])
    return grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=config.tls_client_ca.read_bytes(),
        require_client_auth=True,
    )


def _auth_in_use(config: ServerConfig) -> str:
    """How callers are authenticated, for the start line."""
    ways = [f"{len(config.auth_tokens)} tokens"] if config.auth_tokens is not None else []
    ways += ["client certificates"] if config.tls_client_ca is not None else []
    return " and ".join(ways) or "none"


def _warn_if_open(config: ServerConfig, address: str) -> None:
    """Say it loudly when anyone who reaches the port may do anything."""
    if config.auth_tokens is not None or config.tls_client_ca is not None or is_loopback(config.listen):
        return
    log.warning(
        "NO AUTHENTICATION: anyone who can reach this address may read, change and delete every run; "
        "pass --auth-tokens FILE and/or --tls-client-ca FILE, or listen on 127.0.0.1 only (README: Auth)",
        extra={"address": address},
    )


def _bind(server: grpc.aio.Server, config: ServerConfig) -> str:
    """Bind the listen address; return it with the port the system chose."""
    credentials = _credentials(config)
    try:
        port = server.add_secure_port(config.listen, credentials) if credentials else server.add_insecure_port(config.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        if not config.reuse_port:
            refuse_if_in_use(config.listen)  # say why, when that is why
        raise CannotListen(f"cannot listen on {config.listen}")
    host = config.listen.rsplit(":", 1)[0]
    return f"{host}:{port}"


def _internal_secret(config: ServerConfig) -> str | None:
    """The secret the dashboard's internal socket asks for: only under mutual TLS without tokens,
    where nothing else would keep other processes of this user out of it (rpc/internal_socket.py)."""
    if config.http_listen is None or config.auth_tokens is not None or config.tls_client_ca is None:
        return None
    return secrets.token_urlsafe(32)


def _dashboard(
    config: ServerConfig, server: grpc.aio.Server, internal_secret: str | None, api_address: str
) -> tuple[Dashboard | None, str | None, Path | None]:
    """The dashboard on its bound socket, what the start prints about it, and the folder of its gRPC socket.

    The dashboard calls this server's API like any client, with the user's token, so the token
    check and the roles apply to it in the one place they live. It calls through a Unix socket of
    this server in a folder only this user may enter: no TLS name to verify, no wildcard listen
    address to translate, and the same process answers (its sessions are in this process's memory).
    Under mutual TLS without tokens the socket also asks for a secret only the dashboard knows.
    """
    if config.http_listen is None:
        return None, None, None
    refusal = open_dashboard_refusal(config)
    if refusal is not None:  # the command line refuses first; this keeps other callers of serve() safe
        raise CannotListen(refusal)
    try:
        sock = bind_http(config.http_listen)
    except OSError as err:
        reason = f"cannot serve the dashboard on {config.http_listen}: {err.strerror or err}"
        if config.http_listen_required:
            raise CannotListen(f"{reason} (choose another --http-listen, or off)") from None
        log.warning("dashboard not started: the default address is taken; pass --http-listen host:port (or off)", extra={"address": config.http_listen})
        return None, f"not started: {config.http_listen} is taken (pass --http-listen)", None
    folder = Path(tempfile.mkdtemp(prefix="workflowstate-dashboard-"))  # mode 0700
    server.add_insecure_port(f"unix:{folder / 'grpc.sock'}")
    settings = WebSettings(
        grpc_target=f"unix:{folder / 'grpc.sock'}",
        login_required=config.auth_tokens is not None,
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
        tls_client_ca=config.tls_client_ca,
        listen_host=config.http_listen.rpartition(":")[0],
        allowed_hosts=config.http_allowed_hosts,
        internal_token=internal_secret,
        api_address=api_address,
    )
    dashboard = Dashboard(settings, sock)
    warn_if_dashboard_open(config, dashboard.url)
    return dashboard, f"on {dashboard.url}", folder


async def _require_migrated(database_url: str, schema: str, timeout: float) -> None:
    """--no-migrate: look once (read only) whether the schema lacks a migration; SchemaBehind says
    which and names the command to run. Its deploy step (`workflowstate migrate`) waited for the
    database already, so one attempt is enough; a replica that fails is restarted by its manager."""
    try:
        async with asyncio.timeout(timeout):
            conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row)
    except (psycopg.Error, OSError, TimeoutError) as err:
        reason = f"no answer within {timeout:g}s" if isinstance(err, TimeoutError) else first_line(err)
        raise Unavailable(f"the database cannot be reached: {reason}") from err
    async with conn:
        await require_migrated(conn, schema)


async def serve(config: ServerConfig, database_url: str, *, on_ready: Callable[[str, str | None], None]) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls within the grace period."""
    if not config.apply_migrations:
        await _require_migrated(database_url, config.schema, config.startup_timeout)
    database = Database(database_url, config.schema, config.pool, config.groups)
    applied = await database.open(timeout=config.startup_timeout)
    log.info("schema ready", extra={"schema": config.schema, "migrations_applied": applied})

    # Room for every payload field of the largest request, each at the payload limit. It bounds a
    # Batch too: a batch may carry what one call may (gRPC refuses more with RESOURCE_EXHAUSTED
    # before the handler runs), so batching never makes a server hold more bytes per call.
    max_message = 4 * config.max_payload_bytes + 64 * 1024
    # Replies are bounded by the servicer (rpc/reply_bounds.py); gRPC's own limit is the backstop.
    max_reply = send_limit(config.max_reply_bytes)
    metrics = Metrics()
    internal_secret = _internal_secret(config)
    interceptors: list[grpc.aio.ServerInterceptor] = [TokenAuth(config.auth_tokens, metrics)] if config.auth_tokens is not None else []
    if internal_secret is not None:
        interceptors.append(InternalSocketGuard(internal_secret))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", max_reply),
            # gRPC's default is on, which lets a second server share a port in use without a word.
            ("grpc.so_reuseport", 1 if config.reuse_port else 0),
        ]
    )
    metrics.watch_pool(database.pool_stats)
    database.observe_groups(metrics.group_ran)
    health_servicer = health.aio.HealthServicer()
    # Every background loop runs under it: an unexpected error is logged, counted and restarted.
    supervisor = Supervisor(on_restart=metrics.background_restarted, on_running=metrics.background_running)
    database_health = DatabaseHealth(database, health_servicer, metrics, interval=config.health_interval, supervisor=supervisor)
    server_id = uuid.uuid4()
    notifications = Notifications(database_url)
    watchers = EventWatchers(
        database,
        interval=config.event_interval,
        poll_interval=config.dispatch.poll_interval,
        retention=config.event_retention,
        supervisor=supervisor,
        notifications=notifications,
        on_read=metrics.event_read,
        on_fell_behind=metrics.event_watchers_fell_behind.inc,
    )
    # A change made through this server wakes its event readers at once, not at the next pump.
    store = StateStore(database, on_runs_changed=watchers.runs_changed)
    leases = LeaseManager(
        LeaseStore(database, server_id=server_id, waiter_ttl=config.leases.waiter_ttl), config.leases, notifications, supervisor=supervisor
    )
    tasks = TaskStore(database, on_runs_changed=watchers.runs_changed)
    # The address is known once the server is bound (serving_at).
    workers = WorkerStreams(database, ServerIdentity(server_id, ""))
    dispatcher = TaskDispatcher(database, tasks, workers, config.dispatch, notifications, on_lost=metrics.tasks_lost.inc, supervisor=supervisor)
    # Each StreamStepTasks stream's session, given what it works with.
    task_sessions = functools.partial(
        TaskSession,
        dispatcher=dispatcher,
        tasks=tasks,
        workers=workers,
        reports=WorkerReports(store, tasks),
        settings=config.dispatch,
        # How many updates of one worker message run at once: as many as the pool has connections.
        statement_concurrency=database.pool_size,
        max_payload_bytes=config.max_payload_bytes,
        on_dispatched=metrics.tasks_dispatched.inc,
    )
    retention = RetentionStore(database)
    purger = RetentionPurger(
        retention, interval=config.retention_interval, on_erased=metrics.runs_deleted_by_retention.inc, supervisor=supervisor
    )
    schedules = ScheduleStore(database)
    def scheduled_runs_created(run_ids: Collection[uuid.UUID]) -> None:
        # Their run-created events wake this server's event readers at once, as CreateRun's do.
        watchers.runs_changed(run_ids)
        metrics.runs_created_by_schedules.inc(len(run_ids))

    schedule_firer = ScheduleFirer(
        schedules, poll_interval=config.schedule_poll_interval, on_runs_created=scheduled_runs_created, supervisor=supervisor
    )
    # Every RPC is set on the instance from the handler table (rpc/servicer.py), which a type checker
    # cannot see: the generated base class's methods look abstract to it.
    servicer = WorkflowStateServicer(  # type: ignore[abstract]
        store,
        leases,
        dispatcher,
        watchers,
        metrics,
        max_payload_bytes=config.max_payload_bytes,
        max_reply_bytes=config.max_reply_bytes,
        batch_max_operations=config.batch_max_operations,
        batch_concurrency=config.pool.max_size,
        on_database_unavailable=database_health.report_unavailable,
        catalog=RunCatalog(database, on_runs_changed=watchers.runs_changed),
        retention=retention,
        versions=VersionStore(database),
        schedules=schedules,
        schedule_firer=schedule_firer,
        schedule_limits=config.schedule_limits,
        stream_caps=StreamCaps(config.streams, tokens_checked=config.auth_tokens is not None),
        task_sessions=task_sessions,
    )
    pb_grpc.add_WorkflowStateServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = _bind(server, config)
    workers.serving_at(address)
    _warn_if_open(config, address)
    dashboard, dashboard_line, dashboard_folder = _dashboard(config, server, internal_secret, address)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    if config.metrics_listen:
        metrics.serve(config.metrics_listen)
    await server.start()
    await database_health.start()
    await leases.start()
    dispatcher.start()
    watchers.start()
    purger.start()
    schedule_firer.start()
    listener = supervisor.start("notification-listener", notifications.run)
    if dashboard is not None:
        await dashboard.start()
        log.info("dashboard served", extra={
            "url": dashboard.url, "login": "token" if config.auth_tokens is not None else "none",
            "internal_socket": dashboard.settings.grpc_target.removeprefix("unix:"),
        })  # fmt: skip
    log.info("started", extra={"address": address, "schema": config.schema, "server_id": str(server_id), "auth": _auth_in_use(config)})
    on_ready(address, dashboard_line)
    try:
        await stop.wait()
    finally:
        deadline = StopDeadline(config.grace_period)
        log.info("stopping: draining in-flight calls", extra={"grace_period_s": config.grace_period})
        try:
            async with asyncio.timeout(deadline.remaining()):
                # Tell load balancers first, so new calls go elsewhere while these finish.
                await health_servicer.enter_graceful_shutdown()
                if dashboard is not None:
                    # First: its pages call this server, whose calls are about to be refused.
                    await dashboard.stop()
                # Lease streams live until their client ends them: end them now (holders are told
                # LeaseLost, their keys are released for other servers), so they do not hold up the stop.
                leases.shutdown()
                # Likewise worker streams and event readers: they end with UNAVAILABLE and reconnect
                # elsewhere (workers keep their tasks in flight; readers resume from their last event).
                dispatcher.shutdown()
                watchers.shutdown()
                await server.stop(deadline.drain_time())
                log.debug("stopping: calls finished")
                await leases.stop()
                await dispatcher.stop()
                await watchers.stop()
                await purger.stop()
                await schedule_firer.stop()
                listener.cancel()
                await asyncio.wait([listener])
                log.debug("stopping: lease, dispatch and listener tasks finished")
                await database_health.stop()
                log.debug("stopping: health monitor finished")
                await database.close()
        except TimeoutError:
            # The database did not answer in time (see stop_deadline.py); the process exit closes the rest.
            log.warning("stopping: cut short at the end of the grace period; the database did not answer", extra={"grace_period_s": config.grace_period})
        finally:
            if dashboard_folder is not None:
                shutil.rmtree(dashboard_folder, ignore_errors=True)
        log.info("stopped")
