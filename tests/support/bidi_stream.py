"""A bidirectional stream over the raw generated stub, driven one message at a time by a test."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from support.flows import error_info_of

_END = object()


def duration(span: timedelta) -> Duration:
    message = Duration()
    message.FromTimedelta(span)
    return message


class BidiStream:
    """Send requests, read responses (or the status the stream ended with), from a test thread."""

    def __init__(self, open_call: Callable[[Iterator[Any]], Any]) -> None:
        self._outgoing: queue.Queue[Any] = queue.Queue()
        self._incoming: queue.Queue[Any] = queue.Queue()
        self._call = open_call(iter(self._outgoing.get, _END))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self._incoming.put(response)
            self._incoming.put(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            self._incoming.put(err)

    def send(self, request: Any) -> None:
        self._outgoing.put(request)

    def next(self, timeout: float = 30.0) -> Any:
        """The next response, or the grpc.RpcError / StatusCode.OK the stream ended with."""
        return self._incoming.get(timeout=timeout)

    def answered(self) -> bool:
        """Whether a response (or the stream's end) has arrived and not been read yet."""
        return not self._incoming.empty()

    def expect(self, kind: str, timeout: float = 30.0) -> Any:
        """The next response, which must be of this oneof kind; returns that part of it."""
        response = self.next(timeout)
        assert not isinstance(response, (grpc.RpcError, grpc.StatusCode)), f"expected {kind}, the stream ended: {response!r}"
        assert response.WhichOneof("kind") == kind, f"expected {kind}, got {response}"
        return getattr(response, kind)

    def expect_end(
        self, code: grpc.StatusCode, reason: str | None = None, timeout: float = 30.0, *, metadata: dict[str, str] | None = None
    ) -> str:
        """The stream ends with `code` (and, when given, the ErrorInfo `reason` and these entries of its
        metadata); returns its message."""
        ended = self.next(timeout)
        assert isinstance(ended, grpc.RpcError), f"expected the stream to end with {code}, got {ended!r}"
        assert ended.code() == code, (ended.code(), ended.details())
        if reason is not None:
            assert error_info_of(ended)[0] == reason, (reason, error_info_of(ended), ended.details())
        if metadata is not None:
            sent = error_info_of(ended)[2]
            assert {key: sent.get(key) for key in metadata} == metadata, (metadata, sent, ended.details())
        return ended.details() or ""

    def close(self) -> None:
        """End the client's side of the stream."""
        self._outgoing.put(_END)

    def cancel(self) -> None:
        self._call.cancel()
