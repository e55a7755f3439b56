"""The retention form's values: which workflow, which finished statuses, and how long to keep
(`30d`, `12h`, `1d12h`), read from a POST and written back into the form when it is shown again.
Only what cannot be sent at all is refused here; the API judges the rest (a keep of nothing or over
a century, RUNNING) and its refusal is shown as it is, so the dashboard and the CLI agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from multidict import MultiMapping

from workflowstate.client import RunStatus

# What a policy may erase: runs that finished (RUNNING is refused by the API).
FINISHED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
# Longer than any keep the API accepts (a century): past it the number could not become a timedelta.
_MOST_SECONDS = 1000 * 365 * 86400


class BadRetentionForm(ValueError):
    """A value the form cannot send; the message names the field."""


def parse_keep(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `1w`, or several (`1d12h`)."""
    compact = text.strip().lower().replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise BadRetentionForm(f"keep: must be a length such as 30d, 12h, 90m or 1w (or several, like 1d12h), not {text!r}")
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    return timedelta(seconds=min(seconds, _MOST_SECONDS))


def format_keep(keep: timedelta) -> str:
    """A keep as it is typed: 30d, 12h, 1d12h."""
    seconds = int(keep.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class RetentionForm:
    workflow: str = ""
    statuses: tuple[RunStatus, ...] = ()
    keep: str = ""

    @classmethod
    def from_post(cls, form: MultiMapping[object]) -> RetentionForm:
        statuses: list[RunStatus] = []
        for value in form.getall("status", []):
            try:
                statuses.append(RunStatus(str(value)))
            except ValueError:
                known = ", ".join(status.value for status in FINISHED)
                raise BadRetentionForm(f"statuses: unknown status {str(value)!r} (choose from {known})") from None
        return cls(workflow=str(form.get("workflow", "")).strip(), statuses=tuple(dict.fromkeys(statuses)), keep=str(form.get("keep", "")).strip())
