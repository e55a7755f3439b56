"""The runs list's filters, read from the URL's query and written back into links, so a link or a
bookmark keeps them (the page token too: keyset tokens are good only with the filters they came with)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from multidict import MultiMapping

from workflowstate.client import RunStatus

ORDERS = ("newest", "oldest")
_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadFilter(ValueError):
    """A filter the page cannot use; the message names the field."""


@dataclass(frozen=True)
class RunsQuery:
    workflow: str = ""
    statuses: tuple[RunStatus, ...] = ()
    since: str = ""
    order: str = "newest"
    page_token: str = ""

    @classmethod
    def from_query(cls, query: MultiMapping[str]) -> RunsQuery:
        statuses: list[RunStatus] = []
        for text in query.getall("status", []):
            for word in filter(None, text.lower().split(",")):
                try:
                    statuses.append(RunStatus(word))
                except ValueError:
                    known = ", ".join(status.value for status in RunStatus)
                    raise BadFilter(f"status: unknown status {word!r} (known: {known})") from None
        order = query.get("order", "newest")
        if order not in ORDERS:
            raise BadFilter(f"order: must be newest or oldest, not {order!r}")
        found = cls(
            workflow=query.get("workflow", "").strip(),
            statuses=tuple(dict.fromkeys(statuses)),
            since=query.get("since", "").strip(),
            order=order,
            page_token=query.get("page_token", ""),
        )
        found.created_after()  # check it now, so the message comes with the page
        return found

    def created_after(self, now: datetime | None = None) -> datetime | None:
        """`since` as an instant: a span back from now (30m, 6h, 2d, 1w) or an ISO date or time (UTC unless it says)."""
        if not self.since:
            return None
        span = _SPAN.match(self.since)
        if span:
            return (now or datetime.now(timezone.utc)) - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
        try:
            moment = datetime.fromisoformat(self.since)
        except ValueError:
            raise BadFilter(f"since: {self.since!r} is neither a span like 30m, 6h, 2d, 1w nor an ISO date like 2026-01-31") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

    def url(self, **changes: str) -> str:
        """/runs with these filters (and `changes`); an empty value leaves a parameter out."""
        values = {"workflow": self.workflow, "since": self.since, "order": self.order, "page_token": self.page_token}
        values.update(changes)
        if values["order"] == "newest":
            values["order"] = ""
        pairs = [("workflow", values["workflow"])] + [("status", status.value) for status in self.statuses]
        pairs += [(key, values[key]) for key in ("since", "order", "page_token")]
        query = urlencode([(key, value) for key, value in pairs if value])
        return "/runs" + (f"?{query}" if query else "")
