"""Structured logs: one JSON object per line on stderr (or plain text for people at a terminal).

Fields passed with `extra={...}` become keys of the line, so a log reader can filter on them.

In JSON mode every line of stderr is one JSON object, also those the server's logging does not
write: gRPC's C core (and anything else: a print, a crash report) writes to file descriptor 2
directly. So fd 2 becomes a pipe, read by a thread that passes JSON lines through and turns any
other line into a log record; the logging handler writes to the real stderr. A redirected fd,
not GRPC_VERBOSITY: silencing the C core would also hide its real errors (a failed bind says why
only there), and no setting covers lines from other libraries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TextIO

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        text = f"{record.levelname.lower():7} {record.name}: {record.getMessage()} {fields}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in the type stubs
    """A StreamHandler that drops its lines once stderr cannot be written (its reader gone).

    A worker of `serve --workers N` writes to a pipe its parent reads; once the parent is gone each
    write fails, and logging's default reaction (a traceback on stderr, per line) would fail the same
    way, or feed the stderr relay's pipe until it is full and every logging call blocks for ever.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> logging.Handler:
    handler = _StderrHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The pool logs every reconnect attempt at warning level; our health monitor reports outages once.
    logging.getLogger("psycopg.pool").setLevel(max(logging.ERROR, root.level))
    # grpc's asyncio glue logs "[_cygrpc] Loaded running loop" at debug for every call it serves:
    # it says nothing about the call, and at --log-level debug it was half the log.
    logging.getLogger("grpc._cython.cygrpc").addFilter(_without_running_loop_lines)
    return handler


def _without_running_loop_lines(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("[_cygrpc] Loaded running loop")


@contextlib.contextmanager
def logging_to_stderr(level: str, fmt: str) -> Iterator[None]:
    """Log to stderr in fmt; in JSON mode, every line anything writes to fd 2 meanwhile is JSON."""
    if fmt != "json":
        configure_logging(level, fmt)
        yield
        return
    relay = _StderrRelay()
    relay.handler = configure_logging(level, fmt, relay.output)
    relay.start()
    try:
        yield
    finally:
        relay.stop()


# gRPC's C core (absl) starts a line with its severity: I, W, E or F, then the date (I1126 12:00:00...).
_CORE_SEVERITY = re.compile(r"^([IWEF])\d{4} ")
_LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL}
_stray = logging.getLogger("workflowstate.server.stderr")


class _StderrRelay:
    """fd 2 into a pipe; each line read from it leaves on the real stderr as a JSON object."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self._real_fd = os.dup(2)
        self.output = os.fdopen(os.dup(self._real_fd), "w", buffering=1, encoding="utf-8", errors="replace")
        self.handler: logging.Handler | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)  # children started from now on inherit the pipe as their stderr too
        os.close(write_end)
        self._thread = threading.Thread(target=self._relay, args=(read_end,), name="stderr-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Give fd 2 back; the thread ends once every writer of the pipe has closed it."""
        sys.stderr.flush()
        os.dup2(self._real_fd, 2)
        if self._thread:
            self._thread.join(timeout)

    def _relay(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                try:
                    self._forward(line)
                except (OSError, ValueError):
                    # The real stderr is gone (a worker's parent ended): drop the line but keep
                    # draining, or the pipe fills and every write to fd 2 blocks, the server's too.
                    pass

    def _forward(self, line: str) -> None:
        if _is_json_object(line):  # a JSON log line already (a worker process's, with --workers)
            assert self.handler is not None
            with self.handler.lock or contextlib.nullcontext():
                self.output.write(line + "\n")
            return
        severity = _CORE_SEVERITY.match(line)
        _stray.log(_LEVELS[severity[1]] if severity else logging.WARNING, line, extra={"source": "stderr"})


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
