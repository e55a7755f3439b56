"""The RunFilter message of ListRuns, CancelRuns and DeleteRuns, checked and turned into the
catalog's RunFilter; every refusal names its field (filter.statuses, filter.created_before, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from workflowstate import v1 as pb

from ..core.errors import InvalidArgument
from ..state.catalog import RunFilter
from . import convert, validation


def run_filter_from_proto(field: str, message: pb.RunFilter) -> RunFilter:
    workflow = validation.check_name(f"{field}.workflow", message.workflow, required=False) or None
    statuses = frozenset(convert.run_status_from_proto(f"{field}.statuses", number) for number in message.statuses)

    def instant(name: Literal["created_after", "created_before", "updated_after", "updated_before"]) -> datetime | None:
        if not message.HasField(name):
            return None
        return convert.timestamp_from_proto(f"{field}.{name}", getattr(message, name))

    created_after, created_before = instant("created_after"), instant("created_before")
    updated_after, updated_before = instant("updated_after"), instant("updated_before")
    for start, end, name in ((created_after, created_before, "created"), (updated_after, updated_before, "updated")):
        if start is not None and end is not None and end <= start:
            raise InvalidArgument(f"{field}.{name}_before ({end.isoformat()}) must be after {field}.{name}_after ({start.isoformat()})", field=f"{field}.{name}_before")
    return RunFilter(workflow, statuses, created_after, created_before, updated_after, updated_before)


__all__ = ["run_filter_from_proto"]
