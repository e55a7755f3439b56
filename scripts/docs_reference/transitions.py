"""The transition tables page, from the one table the server obeys (server/state/transitions.py)."""

from __future__ import annotations

from workflowstate.server.state import transitions as source

from .markdown import GENERATED_NOTE, code, table


def page() -> str:
    step_rows = [
        (code(move.source.name), code(move.target.name), move.via.value, "yes" if move.next_attempt else "")
        for move in source.STEP_MOVES
    ]
    run_rows = [(code(move.source.name), code(move.target.name), move.via.value) for move in source.RUN_MOVES]
    version_rows = [(code(move.source.name), code(move.target.name)) for move in source.VERSION_MOVES]
    terminal = ", ".join(code(status.name) for status in source.RunStatus if status in source.TERMINAL_RUN_STATUSES)
    return (
        "\n\n".join(
            [
                GENERATED_NOTE.format(source="server/state/transitions.py"),
                "# Transition tables",
                _first_paragraph(source.__doc__ or ""),
                "Any move not listed is refused with `FAILED_PRECONDITION` and the reason `ILLEGAL_TRANSITION` "
                "([error reasons](errors.md)).",
                "## Steps",
                f"Every step starts in {code(source.STEP_START.name)}. *Via* says which part of the server makes the move; "
                "*next attempt* marks the moves that start the step's next attempt (a new history row).",
                table(("from", "to", "via", "next attempt"), step_rows),
                "## Runs",
                f"Every run starts in {code(source.RUN_START.name)}. A run in {terminal} takes no more run or step writes.",
                table(("from", "to", "via"), run_rows),
                "## Workflow versions",
                f"A version whose creator names no status starts in {code(source.VERSION_START.name)}.",
                table(("from", "to"), version_rows),
            ]
        )
        + "\n"
    )


def _first_paragraph(docstring: str) -> str:
    return " ".join(docstring.strip().split("\n\n")[0].split())
