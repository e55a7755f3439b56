"""When to reconnect a broken stream, shared by ``watch_run``, ``stream_run_events`` and the workers.

The unary RPCs are retried by gRPC itself (see ``_channel``); a stream cannot
be, once a message got through, so its owner opens a new one and resumes where
the old one stopped. This module only says how long to wait before the next
try and when to give up; the owners do the waiting, each in its own way.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import grpc

RECONNECT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})
"""The codes of a stream's end that mean "try again": the server went away or is shutting down."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter between the tries of a stream."""

    initial_backoff: float = 0.1
    """Upper bound of the random wait before the first new try, in seconds."""

    max_backoff: float = 5.0
    """Upper bound of the random wait before any new try, in seconds."""

    multiplier: float = 2.0
    """Growth of the wait's upper bound after each failed try."""

    give_up_after: timedelta | None = timedelta(seconds=60)
    """How long failed tries may go on without progress before the error is raised; ``None``: never."""


class Backoff:
    """The tries of one stream owner: how long to wait before the next one, or whether to give up.

    "Progress" (a message received, or a stream that stayed open for a while)
    starts the count again, so a stream that breaks once a day never gives up.
    """

    def __init__(self, policy: ReconnectPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        self._bound = policy.initial_backoff
        self._failing_since: float | None = None

    def progress(self) -> None:
        """The stream works: the next failure starts from the initial backoff again."""
        self._bound = self._policy.initial_backoff
        self._failing_since = None

    def failed(self, lasted: float = 0.0) -> float | None:
        """A try ended with a code worth retrying after ``lasted`` seconds open.

        Returns the seconds to wait before the next try, or ``None`` to give up.
        """
        if lasted >= self._policy.max_backoff:
            self.progress()  # it was connected: this is a new outage, not the same one
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        limit = self._policy.give_up_after
        if limit is not None and now - self._failing_since >= limit.total_seconds():
            return None
        delay = random.uniform(0.0, self._bound)
        self._bound = min(self._bound * self._policy.multiplier, self._policy.max_backoff)
        if limit is not None:
            # Never sleep past the moment of giving up: try once more at it.
            delay = min(delay, max(0.0, self._failing_since + limit.total_seconds() - now))
        return delay


class OutageLog:
    """What a stream owner logs about an outage: one warning when the server is lost, one when it is back.

    A server away for a minute would otherwise log a warning per try; the
    tries in between are logged at debug level only. The end of an outage is
    a warning too: a log read at WARNING must show that the outage is over,
    not only that it began.
    """

    def __init__(self, logger: logging.Logger, owner: str, meanwhile: str = "") -> None:
        """``meanwhile``: what the owner does while the server is away, in its user's words (added to the warning)."""
        self._logger = logger
        self._owner = owner
        self._meanwhile = f"; {meanwhile}" if meanwhile else ""
        self._failed_tries = 0

    def failed(self, code: grpc.StatusCode, details: str, delay: float) -> None:
        """A stream ended with ``code``; the owner tries again in ``delay`` seconds."""
        self._failed_tries += 1
        if self._failed_tries == 1:
            self._logger.warning(
                "%s: lost the server (%s: %s); reconnecting%s", self._owner, code.name, what_happened(details), self._meanwhile
            )
        self._logger.debug("%s: try %d failed (%s: %s); next in %.1fs", self._owner, self._failed_tries, code.name, details, delay)

    def connected(self) -> None:
        """A stream works again (a message arrived): the outage, if any, is over."""
        if self._failed_tries:
            plural = "" if self._failed_tries == 1 else "s"
            self._logger.warning("%s: reconnected after %d attempt%s", self._owner, self._failed_tries, plural)
            self._failed_tries = 0


def what_happened(details: str) -> str:
    """The part of a stream's end message that says what happened: its first clause.

    The server's and gRPC's messages say what happened first and add, after a semicolon, advice for
    whoever speaks the protocol ("name your tasks in flight in subscribe.running") or transport
    specifics; the client does what the advice says, so its user needs only the first part (the
    whole message is in the debug line of each try).
    """
    return details.split(";", 1)[0].strip()
