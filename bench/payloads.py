"""The payloads of one step lifecycle, shared by the SQL limit and the gRPC figure so both move the same bytes."""

from __future__ import annotations

import json
from typing import Any

WORKFLOW = "bench"
STEP_NAME = "step-1"
RPC_NAME = "rpc"
RETRIES = 2

RUN_INPUT: dict[str, Any] = {"n": 1, "s": "x" * 100}
STEP_DATA: dict[str, Any] = {"a": 1}
STEP_RESULT: dict[str, Any] = {"ok": True}
RUN_OUTPUT: dict[str, Any] = {"done": True}


def as_json(value: Any) -> str:
    """Compact JSON text, as the SQL limit writes it."""
    return json.dumps(value, separators=(",", ":"))
