"""The status a call ends with when its handler raised: one mapping for unary calls, streams and
each operation of a Batch."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import grpc

from ..core import errors

log = logging.getLogger("workflowstate.server.rpc")


def status_of(err: Exception, rpc: str, on_database_unavailable: Callable[[Exception], None]) -> tuple[grpc.StatusCode, str]:
    """The gRPC code and message for an error raised while serving `rpc`.

    The server's own errors map through errors.STATUS_OF (Unavailable also tells the health monitor);
    anything else is a bug: logged with its stack and a reference, answered INTERNAL with the
    reference only, never the stack.
    """
    if isinstance(err, errors.WorkflowStateError):
        if type(err) is errors.Unavailable:
            on_database_unavailable(err)
        return errors.STATUS_OF[type(err)], str(err)
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error", exc_info=err, extra={"rpc": rpc, "reference": reference})
    return grpc.StatusCode.INTERNAL, f"internal server error (reference {reference}); see the server log"
