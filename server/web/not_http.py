"""What the dashboard's log says when bytes that are not an HTTP/1 request reach its port.

aiohttp answers them 400 and logs "Error handling request" at ERROR with a traceback: for a gRPC
client pointed at the dashboard port by mistake (gRPC is HTTP/2, and opens with HTTP/2's preface
without asking to upgrade) that reads as a crash of the server. Here such a record becomes one line
that says what happened and where the API is; errors that are not a client's bad bytes stay as they are.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

# The logger aiohttp's request handler is given (its `logger`): its records pass through the filter below.
NAME = "workflowstate.server.web.http"


class NotHttpRequests(logging.Filter):
    """Turns aiohttp's record of an unparsable request into one line without a traceback."""

    def __init__(self, api_address: str) -> None:
        super().__init__()
        self.api_address = api_address

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if not isinstance(err, HttpProcessingError):
            return True
        record.exc_info = record.exc_text = None
        record.args = ()
        record.reason = err.message.splitlines()[0] if err.message else type(err).__name__
        # aiohttp's C parser stops at the preface's "PRI" method; its Python parser refuses the version.
        if "PRI" in str(err) or "HTTP/2" in str(err):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"a gRPC client called the dashboard port; the API listens on {self.api_address}"
        else:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "the dashboard port received bytes that are not an HTTP/1 request; answered 400"
        return True


def not_http_logger(api_address: str) -> logging.Logger:
    """The logger for the dashboard's request handler, with the filter for the API at api_address."""
    logger = logging.getLogger(NAME)
    logger.filters[:] = [NotHttpRequests(api_address)]
    return logger
