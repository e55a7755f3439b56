"""The lease a write is made under: the fencing token (and lease key) a request may carry."""

from __future__ import annotations

from typing import Any

from ..core import errors
from ..state.store import Fence
from . import validation
from .lease_session import MAX_KEY_LENGTH


def fence_of(request: Any) -> Fence | None:
    """The lease a write is made under, if the request names one."""
    key = validation.check_name("lease_key", request.lease_key, required=False, max_length=MAX_KEY_LENGTH) or None
    if not request.HasField("fencing_token"):
        if key:
            raise errors.InvalidArgument("lease_key is set but fencing_token is not", field="fencing_token")
        return None
    if request.fencing_token <= 0:
        raise errors.InvalidArgument(f"fencing_token must be positive, got {request.fencing_token}", field="fencing_token")
    return Fence(request.fencing_token, key)


__all__ = ["fence_of"]
