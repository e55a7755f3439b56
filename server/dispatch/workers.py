"""The worker streams connected to every server, in the database (worker_streams, dispatch.sql).

Kept cheap: one statement when a stream subscribes, one per heartbeat (the one that already
moves its tasks' leases), one when it ends; none per task. A server that dies cannot delete its
rows: they count as gone once their task lease passed since their last heartbeat, as the tasks
of those streams do (ListWorkers leaves them out; the sweeper deletes them).
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from ..db.database import Database, Row
from ..state.transitions import held_by_worker


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

    def params(self, server: ServerIdentity) -> dict[str, object]:
        return {
            "stream_id": self.stream_id,
            "worker_id": self.worker_id,
            "rpc_names": self.rpc_names,
            "max_in_flight": self.max_in_flight,
            "task_lease": self.task_lease,
            "server_id": server.server_id,
            "server_address": server.address,
            "credential": self.credential,
        }


class WorkerStreams:
    """The worker_streams statements of dispatch.sql, for the streams of one server."""

    def __init__(self, database: Database, server: ServerIdentity) -> None:
        self._sql = database.statements(__package__, "dispatch.sql")
        self.server = server

    def serving_at(self, address: str) -> None:
        """Say where this server listens (shown with its worker streams by ListWorkers)."""
        self.server = ServerIdentity.of(self.server.server_id, address)

    async def connected(self, stream: WorkerStream, tasks_in_flight: int) -> None:
        await self._sql.fetch_one("worker_connected", {**stream.params(self.server), "tasks_in_flight": tasks_in_flight})

    async def heartbeat(self, stream: WorkerStream, in_flight: list[uuid.UUID]) -> None:
        """Move the task lease of the stream's tasks in flight and note the heartbeat, in one statement."""
        params = {**stream.params(self.server), "step_ids": in_flight, "held_status": held_by_worker().value}
        await self._sql.fetch_one("worker_heartbeat", params)

    async def disconnected(self, stream_id: uuid.UUID) -> None:
        await self._sql.fetch_one("worker_disconnected", {"stream_id": stream_id})

    async def listed(self) -> list[Row]:
        """Every stream connected now, to any server, by connect time."""
        return await self._sql.fetch_all("list_workers", {})

    async def sweep(self) -> int:
        """Delete the rows of streams whose server died; how many."""
        return len(await self._sql.fetch_all("sweep_workers", {}))


__all__ = ["ServerIdentity", "WorkerStream", "WorkerStreams"]
