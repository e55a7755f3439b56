"""The skeleton of the server's long-lived streams (Lease, StreamStepTasks).

A session reads one inbox, in one loop, which alone changes the session's state and writes to the
stream. Into the inbox go typed inputs: the client's messages (read by a reader task), the end of
them or the error that stopped reading them, the server's shutdown, and each session's own signals
(timers, wake-ups). The client's messages are bounded in count and bytes: the reader waits for room
before it reads the next one, so HTTP/2 flow control reaches a client that sends faster than the
session answers, and one stream holds at most MAX_PENDING_BYTES (plus the message being read) of
unread requests. The session's own signals are few by construction and never wait.
"""

from __future__ import annotations

import abc
import asyncio
import collections
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from ..core import errors
from ..core.shutdown import ShutdownNotifier

# Unread client messages one stream may hold: enough to keep the session busy while the reader
# waits on the network, little enough that a flood costs nothing.
MAX_PENDING_MESSAGES = 16
MAX_PENDING_BYTES = 1024 * 1024

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)


@dataclass(frozen=True)
class ClientMessage(Generic[Request]):
    message: Request
    size: int  # bytes on the wire, counted against the inbox's room


@dataclass(frozen=True)
class ClientDone:
    """The client ended its side of the stream."""


@dataclass(frozen=True)
class ReadFailed:
    """Reading the client's next message raised (anything but the end of the stream)."""

    error: Exception


@dataclass(frozen=True)
class ShutdownStarted:
    """The server is stopping."""


class Inbox:
    """A session's inputs, in order; the client's messages take room, the session's signals do not."""

    def __init__(self, max_messages: int = MAX_PENDING_MESSAGES, max_bytes: int = MAX_PENDING_BYTES) -> None:
        self._items: collections.deque[Any] = collections.deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._messages = 0
        self._bytes = 0

    def signal(self, item: Any) -> None:
        """Queue one of the session's own inputs (never waits; callable from timers and callbacks)."""
        self._items.append(item)
        self._ready.set()

    async def wait_for_room(self) -> None:
        """Return once the inbox may take another client message."""
        await self._room.wait()

    def put_message(self, message: Message) -> None:
        item = ClientMessage(message, message.ByteSize())
        self._messages += 1
        self._bytes += item.size
        self._update_room()
        self.signal(item)

    async def get(self) -> Any:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, ClientMessage):
            self._messages -= 1
            self._bytes -= item.size
            self._update_room()
        return item

    def _update_room(self) -> None:
        if self._messages < self._max_messages and self._bytes < self._max_bytes:
            self._room.set()
        else:
            self._room.clear()


async def _read_requests(context: grpc.aio.ServicerContext[Request, Response], inbox: Inbox) -> None:
    """Move the client's messages into the inbox, waiting for room before reading each one."""
    while True:
        await inbox.wait_for_room()
        try:
            message = await context.read()
        except Exception as err:  # noqa: BLE001 - any read error ends the session, which reports it
            inbox.signal(ReadFailed(err))
            return
        # types-grpcio declares read() as returning the request only; at the end of the client's side
        # it returns grpc.aio.EOF, which is what this checks for.
        if message is grpc.aio.EOF:  # type: ignore[comparison-overlap]
            inbox.signal(ClientDone())
            return
        inbox.put_message(message)


async def _forward_shutdown(shutdown: asyncio.Event, inbox: Inbox) -> None:
    await shutdown.wait()
    inbox.signal(ShutdownStarted())


def raise_read_error(error: Exception) -> None:
    """End a stream whose next message could not be read."""
    if isinstance(error, DecodeError):
        raise errors.InvalidArgument(f"a message of the stream is not a valid request: {error}", field=None) from error
    raise error  # unexpected: answered INTERNAL with a reference, logged with its stack


class StreamSession(abc.ABC, Generic[Request, Response]):
    """One stream: a reader into the inbox, one loop over it, and cleanup however the stream ends.

    Subclasses handle the client's messages, the shutdown, their own signals, and say what to
    release when the stream ends (close).
    """

    def __init__(self, context: grpc.aio.ServicerContext[Request, Response], notifier: ShutdownNotifier) -> None:
        self._context = context
        self._notifier = notifier
        self.inbox = Inbox()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        shutdown = self._notifier.on_shutdown()
        helpers = [
            loop.create_task(_read_requests(self._context, self.inbox)),
            loop.create_task(_forward_shutdown(shutdown, self.inbox)),
        ]
        cancelled = False
        try:
            while True:
                match await self.inbox.get():
                    case ClientMessage(message=message):
                        await self.on_message(message)
                    case ClientDone():
                        return
                    case ReadFailed(error=error):
                        raise_read_error(error)
                    case ShutdownStarted():
                        await self.on_shutdown()
                    case signal:
                        await self.on_signal(signal)
                await self.after_input()
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            for helper in helpers:
                helper.cancel()
            self._notifier.forget_shutdown_hook(shutdown)
            await self.close(cancelled=cancelled)

    @abc.abstractmethod
    async def on_message(self, message: Request) -> None: ...

    @abc.abstractmethod
    async def on_shutdown(self) -> None:
        """The server is stopping: tell the client if need be, then raise errors.ShuttingDown."""

    @abc.abstractmethod
    async def on_signal(self, signal: Any) -> None: ...

    async def after_input(self) -> None:
        """Called after each input is handled (a session that claims work looks for it here)."""
        return None

    @abc.abstractmethod
    async def close(self, *, cancelled: bool) -> None:
        """Release what the stream holds. cancelled: the stream was cancelled (client gone), so
        this may not await anything that takes time; start it in the background instead."""

    async def write(self, response: Response) -> None:
        # One write at a time, awaited: a client that does not read holds up its own session
        # (which then stops reading its requests), not the server's memory.
        await self._context.write(response)
