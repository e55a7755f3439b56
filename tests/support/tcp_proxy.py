"""A TCP proxy in front of PostgreSQL that a test can cut and restore: a database outage on demand.

It forwards 127.0.0.1:<port> to the database's host:port or Unix socket. `cut()` closes the
listener and every open connection (the server sees connections drop and new ones refused);
`restore()` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class CuttableProxy:
    def __init__(self, database_url: str) -> None:
        params = conninfo_to_dict(database_url)
        host = str(params.get("host") or "localhost")
        port = int(params.get("port") or 5432)
        self._upstream_unix = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._upstream_tcp = (host, port)
        self._params = params
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> CuttableProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    @property
    def url(self) -> str:
        params = {**self._params, "host": "127.0.0.1", "port": str(self.port)}
        return make_conninfo("", **params)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._upstream_unix:
                up_reader, up_writer = await asyncio.open_unix_connection(self._upstream_unix)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._upstream_tcp)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                end.transport.abort()
                self._writers.discard(end)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    async def _cut(self) -> None:
        assert self._server
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    def cut(self) -> None:
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    async def _shutdown(self) -> None:
        if self._server and self._server.is_serving():
            await self._cut()
        for writer in list(self._writers):
            writer.transport.abort()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
