"""Markdown pieces the generated pages share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

GENERATED_NOTE = "<!-- Generated at build time by scripts/docs_reference from {source}; edit the source, not this page. -->"


def cell(text: str) -> str:
    """`text` made safe for one table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table of `rows` under `header`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(cell(value) for value in row) + " |" for row in rows)
    return "\n".join(lines)


def code(text: str) -> str:
    """`text` as inline code."""
    return f"`{text}`"
