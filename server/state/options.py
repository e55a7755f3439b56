"""A step's retry and dispatch options, as the store takes them.

Every field None means "not set": at insert the rpc name's defaults (the table dispatch_defaults)
fill it in, in the insert's own statement; at SetStepScheduled the stored value stays.
What each option does is decided in SQL by the statements that claim, fail and sweep work
(dispatch/dispatch.sql); this class only carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class DispatchOptions:
    """The options an rpc name's dispatch defaults may set: every option but the concurrency key."""

    retries: int | None = None
    retry_delay: timedelta | None = None
    backoff_coefficient: float | None = None
    max_retry_delay: timedelta | None = None
    jitter: float | None = None
    start_to_close: timedelta | None = None
    schedule_to_start: timedelta | None = None
    priority: int | None = None


@dataclass(frozen=True)
class StepOptions(DispatchOptions):
    """A step's options: its rpc name's, and the concurrency key that is the step's own."""

    # None or non-empty: an empty key is no key.
    concurrency_key: str | None = None


NO_OPTIONS = StepOptions()

__all__ = ["NO_OPTIONS", "DispatchOptions", "StepOptions"]
