"""How the operator commands print: aligned tables for people, one JSON object per line for scripts.

Times are UTC in ISO 8601 with their zone, in tables (`2026-11-26T16:10:08Z`, or an age: `3m ago`)
as in JSON: a time without its zone is misread by whoever is elsewhere. Headers are upper-case words
apart (`RUN ID`, `WORKER ID`: `header`). Ids are never shortened: operators paste them into the next
command.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from workflowstate.client import UndecodableJson


def jsonable(value: Any) -> Any:
    """`value` (the client's dataclasses, enums, datetimes, timedeltas, nested) as plain JSON values."""
    if isinstance(value, UndecodableJson):
        # Under a key of its own, so a script tells it from a stored value of the same shape.
        return {"undecodable_json": {"field": value.field, "reason": value.reason, "text": value.text}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(jsonable(key)): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    return value


def print_json(value: Any) -> None:
    """One line: a JSON object a script can read with `jq` or json.loads per line."""
    print(json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":")), flush=True)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Columns aligned on their widest cell, two spaces apart; the last column is not padded."""
    cells = [[str(header) for header in headers]] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    for row in cells:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)] + [row[-1]]
        print("  ".join(padded).rstrip())
    sys.stdout.flush()


def utc_time(moment: datetime | None) -> str:
    """`2026-11-26T16:10:08Z`: UTC, to the second, ISO 8601 (what --since takes back); `-` for none."""
    return "-" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(name: str) -> str:
    """A field's name as a table header, in the style of every table: `worker_id` is `WORKER ID`."""
    return name.replace("_", " ").upper()


def span(length: timedelta) -> str:
    """A short human length: `0.25s`, `42s`, `3m05s`, `2h03m`, `4d02h`."""
    seconds = length.total_seconds()
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago `moment` was (`3m05s ago`), or how far ahead (`in 12s`); `-` for none."""
    if moment is None:
        return "-"
    delta = (now or datetime.now(timezone.utc)) - moment
    if delta < timedelta(0):
        return f"in {span(-delta)}"
    return f"{span(delta)} ago"


def shortened(text: str, limit: int = 120) -> str:
    """One line of at most `limit` characters: a table cell must not break the table."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
