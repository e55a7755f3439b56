"""The server's settings, one dataclass; the CLI fills it from flags and WORKFLOWSTATE_* variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ..dispatch.dispatcher import DispatchSettings
from ..rpc.stream_caps import StreamLimits
from ..rpc.tokens import Role
from ..schedules.limits import ScheduleLimits
from ..leases.manager import LeaseSettings
from ..db.coalescer import GroupSettings
from ..db.database import PoolSettings


@dataclass(frozen=True)
class ServerConfig:
    """Everything `workflowstate serve` can be told."""

    # host:port to listen on; port 0 picks a free port (printed once ready).
    listen: str = "127.0.0.1:50051"
    # PostgreSQL connection URL; None starts the embedded PostgreSQL in data_dir.
    database_url: str | None = None
    # PostgreSQL schema holding the tables: a plain lower-case identifier (db/schema_name.py).
    schema: str = "workflows"
    # Where the embedded PostgreSQL keeps its data (unused with database_url).
    data_dir: Path | None = None
    # Largest JSON payload (or error) one field may carry, in bytes.
    max_payload_bytes: int = 1024 * 1024
    # Most bytes one unary reply may carry (server/rpc/reply_bounds.py): a page ends early, a Batch
    # stops adding results, any other reply past it is RESOURCE_EXHAUSTED. At least what one run
    # carries at max_payload_bytes (reply_bounds.max_item_bytes).
    max_reply_bytes: int = 64 * 1024 * 1024
    # Most operations one Batch call may carry.
    batch_max_operations: int = 1000
    pool: PoolSettings = field(default_factory=PoolSettings)
    # How concurrent operations of one kind share a statement and a commit (db/coalescer.py).
    groups: GroupSettings = field(default_factory=GroupSettings)
    leases: LeaseSettings = field(default_factory=LeaseSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    # Seconds between two looks of the event pump at the events table, while it has readers.
    event_interval: float = 0.05
    # How long run events are kept; None keeps them for ever.
    event_retention: timedelta | None = None
    # Seconds between two applications of the retention policies (server/retention/).
    retention_interval: float = 60.0
    # The longest the schedules' loop sleeps (server/schedules/): a schedule created or resumed
    # through another server starts firing within it; due times themselves are slept to exactly.
    schedule_poll_interval: float = 1.0
    # How often one schedule may fire, and how many the schema may hold (server/schedules/limits.py).
    schedule_limits: ScheduleLimits = field(default_factory=ScheduleLimits)
    # How many streams one caller may hold open (server/rpc/stream_caps.py).
    streams: StreamLimits = field(default_factory=StreamLimits)
    # Seconds in-flight calls get to finish after SIGTERM/SIGINT.
    grace_period: float = 10.0
    # Apply the migrations the schema lacks at start (False: --no-migrate, for replicas; a schema
    # that lacks any stops the start, naming `workflowstate migrate`).
    apply_migrations: bool = True
    # Seconds to wait for the database at start-up before giving up.
    startup_timeout: float = 30.0
    # Seconds between database pings of the health monitor.
    health_interval: float = 5.0
    # Share the listen port with servers already on it (SO_REUSEPORT); else refuse to start there.
    reuse_port: bool = False
    # host:port to serve Prometheus metrics on (/metrics); None serves none.
    metrics_listen: str | None = None
    # PEM files for TLS; both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # PEM CA certificates: with them, TLS requires a client certificate they sign (mutual TLS).
    tls_client_ca: Path | None = None
    # host:port of the web dashboard (port 0 picks one); None serves none.
    http_listen: str | None = "127.0.0.1:8080"
    # Whether http_listen was asked for (flag or variable): then a port in use stops the start;
    # the default one in use only leaves the dashboard off, so a second server still starts.
    http_listen_required: bool = False
    # More names the dashboard answers (name or name:port), besides its listen host and loopback names.
    http_allowed_hosts: tuple[str, ...] = ()
    # Serve the dashboard beyond loopback without tokens or client certificates (refused otherwise).
    http_allow_unauthenticated_network: bool = False
    # {SHA-256 of a token: its role} from --auth-tokens; None lets every call through.
    auth_tokens: dict[bytes, Role] | None = None
