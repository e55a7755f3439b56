"""The checks every capability makes of a request's payloads: JSON texts and failures, within the
server's payload limit (--max-payload-bytes)."""

from __future__ import annotations

from workflowstate import v1 as pb

from ..state.store import FailureRecord
from . import convert, validation


class Payloads:
    """The payload checks of one server, bound to its limit."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def json(self, field: str, text: str) -> str:
        """`text` as stored, once it is JSON within the limit (InvalidArgument naming `field` else)."""
        return validation.check_json(field, text, max_bytes=self.max_bytes)

    def failure(self, field: str, message: pb.Failure) -> FailureRecord:
        """A failure as stored, once its message, stack and code are within the limit."""
        validation.check_failure(field, message.message, message.stack, message.code, max_bytes=self.max_bytes)
        return convert.failure_from_proto(message)


__all__ = ["Payloads"]
