"""The error reasons page: every reason a refusal names on the wire (its ErrorInfo), with its gRPC code.

The reasons are written once on the server: the outcome names of its statements, each error class's
REASON, the auth refusals' reasons; tests/unit/test_error_reasons.py checks the README's table
against server_reasons() below.
"""

from __future__ import annotations

import grpc

from workflowstate.server.rpc.auth import Refused
from workflowstate.server.rpc.status import STATUS_OF
from workflowstate.server.state.outcomes import ERROR_CLASS

from .markdown import GENERATED_NOTE, code, table


def server_reasons() -> dict[str, str]:
    """Every reason the server sends, with the name of its gRPC code."""
    reasons = {outcome.name: STATUS_OF[kind].name for outcome, kind in ERROR_CLASS.items() if kind is not None}
    reasons |= {kind.REASON: code.name for kind, code in STATUS_OF.items()}
    reasons |= {reason: code.name for code, reason in Refused.REASON_OF.items()}
    reasons["INTERNAL"] = grpc.StatusCode.INTERNAL.name
    return reasons


def _origins() -> dict[str, str]:
    """Where the server names each reason: an outcome of a statement, an error class, an auth refusal."""
    origins = {outcome.name: f"a statement's outcome {code(outcome.value)}" for outcome, kind in ERROR_CLASS.items() if kind}
    for kind in STATUS_OF:
        origins[kind.REASON] = f"{code(kind.__name__)}: {_first_sentence(kind.__doc__ or '')}"
    origins |= {reason: "the auth check of every call" for reason in Refused.REASON_OF.values()}
    origins["INTERNAL"] = "a server bug: never an answer to user input"
    return origins


def page() -> str:
    origins = _origins()
    rows = [(code(reason), code(status), origins[reason]) for reason, status in sorted(server_reasons().items())]
    return (
        "\n\n".join(
            [
                GENERATED_NOTE.format(
                    source="the server's outcomes (server/state/outcomes.py), errors (server/core/errors.py) and auth"
                ),
                "# Error reasons",
                "Every refusal carries a `google.rpc.ErrorInfo` in its status details whose `reason` is one of these, "
                "with its `domain` and `metadata` (the context the message gives, as strings). "
                "A program matches the reason, never the message.",
                table(("reason", "gRPC code", "named by"), rows),
            ]
        )
        + "\n"
    )


def _first_sentence(docstring: str) -> str:
    text = " ".join(docstring.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]
