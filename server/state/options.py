"""A step's retry and dispatch options, as the store takes them.

Every field None means "not set": at insert the rpc name's defaults (the table dispatch_defaults)
fill it in, in the insert's own statement; at SetStepScheduled the stored value stays.
What each option does is decided in SQL by the statements that claim, fail and sweep work
(dispatch/dispatch.sql); this class only carries them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class StepOptions:
    retries: int | None = None
    retry_delay: timedelta | None = None
    backoff_coefficient: float | None = None
    max_retry_delay: timedelta | None = None
    jitter: float | None = None
    start_to_close: timedelta | None = None
    schedule_to_start: timedelta | None = None
    priority: int | None = None
    # None or non-empty: an empty key is no key.
    concurrency_key: str | None = None

    def params(self) -> dict[str, Any]:
        """The statement parameters, one per option, named opt_<option>."""
        return {f"opt_{field.name}": getattr(self, field.name) for field in fields(self)}


NO_OPTIONS = StepOptions()

__all__ = ["NO_OPTIONS", "StepOptions"]
