"""The TypeScript client retries UNAVAILABLE for exactly the RPCs the Python client does.

Both lists say which calls are safe to send twice (a retry may follow a request the server
executed but whose reply was lost); they live in two languages, so this keeps them from drifting.
"""

from __future__ import annotations

import re
from pathlib import Path

from workflowstate.client._channel import RETRYABLE_METHODS

RETRY_TS = Path(__file__).resolve().parents[2] / "clients" / "typescript" / "packages" / "client" / "src" / "retry.ts"


def typescript_retryable() -> set[str]:
    text = RETRY_TS.read_text()
    match = re.search(r"RETRYABLE_METHODS: ReadonlySet<string> = new Set\(\[(.*?)\]\);", text, re.S)
    assert match, f"no RETRYABLE_METHODS set in {RETRY_TS}"
    body = re.sub(r"//[^\n]*", "", match.group(1))
    return set(re.findall(r'"(\w+)"', body))


def test_the_typescript_client_retries_the_rpcs_the_python_client_retries() -> None:
    typescript = typescript_retryable()
    assert typescript, "the TypeScript list was read as empty"
    assert typescript == set(RETRYABLE_METHODS), {
        "only in TypeScript": sorted(typescript - set(RETRYABLE_METHODS)),
        "only in Python": sorted(set(RETRYABLE_METHODS) - typescript),
    }
