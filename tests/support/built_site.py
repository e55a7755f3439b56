"""A built docs site read back: each page's sections (by heading id) with their text and table rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

HEADINGS = ("h1", "h2", "h3")


@dataclass
class Section:
    """The part of a page from one heading to the next: its heading, its text and its tables' rows."""

    heading: str = ""
    text: str = ""
    rows: list[tuple[str, ...]] = field(default_factory=list)


class _SectionReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, Section] = {"": Section()}
        self.current = self.sections[""]
        self.in_heading = False
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag in HEADINGS and ident:
            self.current = self.sections.setdefault(ident, Section())
            self.in_heading = True
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in HEADINGS:
            self.in_heading = False
        elif tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.current.rows.append(tuple(self.row))
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.in_heading:
            self.current.heading += data
        self.current.text += data
        if self.cell is not None:
            self.cell.append(data)


def sections(site: Path, page: str) -> dict[str, Section]:
    """The sections of the built `page` (its path under docs/, e.g. reference/api.md), by heading id."""
    reader = _SectionReader()
    reader.feed((site / page.removesuffix(".md") / "index.html").read_text(encoding="utf-8"))
    return reader.sections
