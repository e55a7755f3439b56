"""StepOptions and DispatchDefaults between protobuf and the store, checked.

Every bad value is an InvalidArgument naming the field (options.backoff_coefficient,
defaults.rate_period, ...): a coefficient below 1, a negative delay, a jitter outside [0, 1], a
timeout that is not positive, a limit below 1, a rate limit without its period.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration

from workflowstate import v1 as pb

from ..dispatch.rows import DispatchDefaultsRow
from ..core.errors import InvalidArgument
from ..dispatch.defaults import DispatchDefaults
from ..state.options import StepOptions
from . import convert, validation


def _duration(message: Any, name: str, field: str, *, positive: bool = False) -> timedelta | None:
    if not message.HasField(name):
        return None
    value = convert.duration_from_proto(field, getattr(message, name))
    if positive and value <= timedelta(0):
        raise InvalidArgument(f"{field} must be positive, got {value}", field=field)
    return validation.check_duration(field, value)


def _finite(field: str, value: float) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"{field} must be a finite number, got {value}", field=field)
    return value


def options_from_proto(message: pb.StepOptions, prefix: str = "options", *, key_allowed: bool = True) -> StepOptions:
    """The options a request sets (None for each it leaves unset), checked."""
    coefficient = jitter = None
    if message.HasField("backoff_coefficient"):
        coefficient = _finite(f"{prefix}.backoff_coefficient", message.backoff_coefficient)
        if coefficient < 1:
            raise InvalidArgument(f"{prefix}.backoff_coefficient must be at least 1, got {coefficient:g}", field=f"{prefix}.backoff_coefficient")
    if message.HasField("jitter"):
        jitter = _finite(f"{prefix}.jitter", message.jitter)
        if not 0 <= jitter <= 1:
            raise InvalidArgument(f"{prefix}.jitter must be from 0 to 1, got {jitter:g}", field=f"{prefix}.jitter")
    if message.HasField("retries") and message.retries < 0:
        raise InvalidArgument(f"{prefix}.retries must not be negative, got {message.retries}", field=f"{prefix}.retries")
    key = validation.check_name(f"{prefix}.concurrency_key", message.concurrency_key, required=False)
    if key and not key_allowed:
        raise InvalidArgument(f"{prefix}.concurrency_key cannot be a default: a key belongs to each step", field=f"{prefix}.concurrency_key")
    return StepOptions(
        retries=message.retries if message.HasField("retries") else None,
        retry_delay=_duration(message, "retry_delay", f"{prefix}.retry_delay"),
        backoff_coefficient=coefficient,
        max_retry_delay=_duration(message, "max_retry_delay", f"{prefix}.max_retry_delay"),
        jitter=jitter,
        start_to_close=_duration(message, "start_to_close", f"{prefix}.start_to_close", positive=True),
        schedule_to_start=_duration(message, "schedule_to_start", f"{prefix}.schedule_to_start", positive=True),
        priority=message.priority if message.HasField("priority") else None,
        concurrency_key=key or None,
    )


def defaults_from_proto(message: pb.DispatchDefaults) -> DispatchDefaults:
    rpc_name = validation.check_name("defaults.rpc_name", message.rpc_name)
    options = options_from_proto(message.options, "defaults.options", key_allowed=False)
    limit = message.concurrency_limit if message.HasField("concurrency_limit") else None
    if limit is not None and limit < 1:
        raise InvalidArgument(f"defaults.concurrency_limit must be at least 1, got {limit}", field="defaults.concurrency_limit")
    rate = message.rate_limit if message.HasField("rate_limit") else None
    if rate is not None and rate < 1:
        raise InvalidArgument(f"defaults.rate_limit must be at least 1, got {rate}", field="defaults.rate_limit")
    period = _duration(message, "rate_period", "defaults.rate_period", positive=True)
    if (rate is None) != (period is None):
        raise InvalidArgument("defaults.rate_limit and defaults.rate_period go together: set both or neither", field=None)
    return DispatchDefaults(rpc_name, options, limit, rate, period)


def defaults_to_proto(row: DispatchDefaultsRow) -> pb.DispatchDefaults:
    period: Duration | None = convert.duration(row["rate_period"]) if row["rate_period"] is not None else None
    return pb.DispatchDefaults(
        rpc_name=row["rpc_name"],
        options=convert.options_to_proto(row),
        concurrency_limit=row["concurrency_limit"],
        rate_limit=row["rate_limit"],
        rate_period=period,
        update_time=convert.timestamp(row["update_time"]),
    )


__all__ = ["defaults_from_proto", "defaults_to_proto", "options_from_proto"]
