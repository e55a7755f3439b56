"""The worker streams connected to every server, in the database (worker_streams, dispatch.sql).

Kept cheap: one statement when a stream subscribes, one per heartbeat (the one that already
moves its tasks' leases), one when it ends; none per task. A server that dies cannot delete its
rows: they count as gone once their task lease passed since their last heartbeat, as the tasks
of those streams do (ListWorkers leaves them out; the sweeper deletes them).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from ..db.database import Database
from ..db.params import NO_INPUT, NoInput, spread
from ..state.transitions import held_by_worker
from .inputs import StreamIdInput
from .rows import HeartbeatRow, StreamIdRow, WorkerStreamRow


@dataclass(frozen=True)
class ServerIdentity:
    """Which server a stream is connected to, as ListWorkers shows it."""

    server_id: uuid.UUID
    address: str

    @classmethod
    def of(cls, server_id: uuid.UUID, bound: str) -> ServerIdentity:
        """From the address the server bound: a wildcard host (0.0.0.0, [::]) says nothing about
        where the server is, so this machine's name stands in for it."""
        host, _, port = bound.rpartition(":")
        if host in ("", "0.0.0.0", "[::]", "::"):
            host = socket.gethostname()
        return cls(server_id, f"{host}:{port}")


@dataclass(frozen=True)
class WorkerStream:
    """One subscribed stream, as stored."""

    stream_id: uuid.UUID
    worker_id: str
    rpc_names: list[str]
    max_in_flight: int
    task_lease: timedelta
    # The fingerprint of the token its worker authenticated with (None without auth; see caller.py).
    credential: str | None = None


@dataclass(frozen=True)
class WorkerConnectedInput:
    """worker_connected: one subscribed stream's row, as of now."""

    stream: WorkerStream = field(metadata=spread(""))
    server_id: uuid.UUID
    server_address: str
    tasks_in_flight: int


@dataclass(frozen=True)
class WorkerHeartbeatInput:
    """worker_heartbeat: the stream's row noted (re-inserted if swept), its attempts in flight (step_ids) extended."""

    stream: WorkerStream = field(metadata=spread(""))
    server_id: uuid.UUID
    server_address: str
    step_ids: list[uuid.UUID]

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"held_status": held_by_worker().value}


class WorkerStreams:
    """The worker_streams statements of dispatch.sql, for the streams of one server."""

    def __init__(self, database: Database, server: ServerIdentity) -> None:
        sql = database.statements(__package__, "dispatch.sql")
        self.server = server
        self._connected = sql.query("worker_connected", WorkerConnectedInput, StreamIdRow)
        self._heartbeat = sql.query("worker_heartbeat", WorkerHeartbeatInput, HeartbeatRow)
        self._disconnected = sql.query("worker_disconnected", StreamIdInput, StreamIdRow)
        self._listed = sql.query("list_workers", NoInput, WorkerStreamRow)
        self._sweep = sql.query("sweep_workers", NoInput, StreamIdRow)

    def serving_at(self, address: str) -> None:
        """Say where this server listens (shown with its worker streams by ListWorkers)."""
        self.server = ServerIdentity.of(self.server.server_id, address)

    async def connected(self, stream: WorkerStream, tasks_in_flight: int) -> None:
        await self._connected.one(WorkerConnectedInput(stream, self.server.server_id, self.server.address, tasks_in_flight))

    async def heartbeat(self, stream: WorkerStream, in_flight: list[uuid.UUID]) -> None:
        """Move the task lease of the stream's tasks in flight and note the heartbeat, in one statement."""
        await self._heartbeat.one(WorkerHeartbeatInput(stream, self.server.server_id, self.server.address, in_flight))

    async def disconnected(self, stream_id: uuid.UUID) -> None:
        await self._disconnected.one(StreamIdInput(stream_id))

    async def listed(self) -> list[WorkerStreamRow]:
        """Every stream connected now, to any server, by connect time."""
        return await self._listed.all(NO_INPUT)

    async def sweep(self) -> int:
        """Delete the rows of streams whose server died; how many."""
        return len(await self._sweep.all(NO_INPUT))


__all__ = ["ServerIdentity", "WorkerStream", "WorkerStreams"]
