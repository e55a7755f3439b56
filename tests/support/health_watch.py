"""Follow the health service of a server: every status it sends, with the time it arrived."""

from __future__ import annotations

import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


class HealthWatch:
    """Every status the health service sends, with the time it arrived."""

    def __init__(self, target: str) -> None:
        self.seen: list[tuple[float, int]] = []
        self._changed = threading.Condition()
        self._channel = grpc.insecure_channel(target)
        self._watch = health_pb2_grpc.HealthStub(self._channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=300)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for answer in self._watch:
                with self._changed:
                    self.seen.append((time.monotonic(), answer.status))
                    self._changed.notify_all()
        except grpc.RpcError:
            pass  # cancelled by close()

    def wait_for(self, status: int, after: float, timeout: float) -> float:
        """When `status` was first seen after `after`."""

        def found() -> float | None:
            return next((when for when, seen in self.seen if seen == status and when > after), None)

        with self._changed:
            assert self._changed.wait_for(lambda: found() is not None, timeout), f"health never said {status} ({self.seen})"
            return found()  # type: ignore[return-value]

    def close(self) -> None:
        self._watch.cancel()
        self._reader.join(10)
        self._channel.close()
