"""The retry policy of a local step: how many failures it takes and how long after each it tries again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, the n-th after ``retry_delay * backoff**(n-1)``."""

    retries: int = 0
    """How many times a failure raised by the step's function is retried; 0: never."""

    retry_delay: timedelta = timedelta(0)
    """The wait before the first retry, counted from the recorded failure."""

    backoff: float = 1.0
    """Each further retry waits this many times longer than the one before."""

    max_retry_delay: timedelta | None = None
    """The longest wait between two attempts; ``None``: no bound."""

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be at least 0, got {self.retries}")
        if self.retry_delay < timedelta(0):
            raise ValueError(f"retry_delay must not be negative, got {self.retry_delay}")
        if self.backoff < 1.0:
            raise ValueError(f"backoff must be at least 1, got {self.backoff}")

    def allows_another(self, failures: int) -> bool:
        """Whether, after ``failures`` failures raised by the function, it runs again."""
        return failures <= self.retries

    def delay_after(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure (1 for the first)."""
        delay = self.retry_delay * (self.backoff ** max(0, failures - 1))
        if self.max_retry_delay is not None:
            delay = min(delay, self.max_retry_delay)
        return delay
