"""The values operators type to pick runs: `--status failed,running`, `--since 2d`, `--keep 30d`.

Each is an argparse type, so a bad value is exit 2 with the option named and what it takes.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import TypeVar
from pathlib import Path
from datetime import datetime, timedelta, timezone

from workflowstate.client import RunStatus

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
STATUS_NAMES = ", ".join(status.value for status in RunStatus)


def span(text: str) -> timedelta:
    """`30m`, `1h`, `2d`, `1w`, `90s`, or several (`1h30m`)."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _SPAN.sub("", compact):
        raise argparse.ArgumentTypeError(f"must be a length such as 30m, 1h, 2d or 1w, not {text!r}")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _SPAN.findall(compact))
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be longer than nothing, not {text!r}")
    return timedelta(seconds=seconds)


def moment(text: str) -> datetime:
    """A time: a length ago (`1h`, `2d`: that long before now) or an ISO 8601 time (local when it
    names no zone), as a timezone-aware datetime."""
    try:
        return datetime.now(timezone.utc) - span(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a length ago such as 30m, 1h or 2d, or an ISO time such as 2026-11-26T09:00 or 2026-11-26, not {text!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.astimezone()


def statuses(text: str) -> list[RunStatus]:
    """`failed,running`: any of these run statuses (case does not matter)."""
    chosen: list[RunStatus] = []
    for word in (part.strip().lower() for part in text.split(",")):
        try:
            status = RunStatus(word)
        except ValueError:
            raise argparse.ArgumentTypeError(f"unknown status {word!r} (choose from {STATUS_NAMES}, separated by commas)") from None
        if status not in chosen:
            chosen.append(status)
    return chosen


# The statuses a run ends in: retention keeps (then deletes) only these.
FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
FINISHED_NAMES = ", ".join(status.value for status in FINISHED)


def finished_statuses(text: str) -> list[RunStatus]:
    """`failed,cancelled`: statuses of `statuses` a run ends in, refused here in the words typed
    rather than by the server in the protocol's (RUN_STATUS_RUNNING)."""
    chosen = statuses(text)
    open_ones = [status.value for status in chosen if status not in FINISHED]
    if open_ones:
        raise argparse.ArgumentTypeError(
            f"{', '.join(open_ones)}: runs not finished are never deleted by retention (choose from {FINISHED_NAMES}, separated by commas)"
        )
    return chosen


def limit(text: str) -> int | None:
    """A positive count, or `all` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number or 'all', not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive (or 'all'), not {text!r}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
    return value


def certificates_file(text: str) -> Path:
    """A readable file of PEM certificates (the server's --tls-client-ca, the commands' --tls-ca)."""
    path = Path(text)
    try:
        content = path.read_bytes()
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {err.strerror or err}") from None
    if b"-----BEGIN CERTIFICATE-----" not in content:
        raise argparse.ArgumentTypeError(f"{path} holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
    return path


Number = TypeVar("Number", int, float)


def positive_number(kind: type[Number], noun: str) -> Callable[[str], Number]:
    """An argparse type: a positive `kind`, with the same messages for a flag and its variable."""

    def check(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive {noun}, not {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError("must be positive")
        return value

    return check
