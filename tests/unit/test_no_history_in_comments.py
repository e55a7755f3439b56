"""Comments and docs name things (a table, a function, an index), never the history that brought
them: no work-item numbers, no migration numbers or migration file names (those are renumbered
when branches merge, and a reader cannot look them up)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where code, contract and docs live; the migrations themselves are named by number, and so is
# their test of order.
SOURCES = ("server", "client", "proto", "bench", "scripts", "tests", "clients/typescript/packages", "examples", "README.md")
SUFFIXES = {".py", ".sql", ".proto", ".ts", ".md", ".mjs"}
SKIPPED_PARTS = {"node_modules", "migrations", "dist", "__pycache__", "generated"}
# Files that read a migration by its file name (code, not a citation), and this test.
READS_MIGRATIONS = {"tests/unit/test_outcomes.py", "tests/unit/test_no_history_in_comments.py"}
HISTORY = re.compile(r"\b(?:issue|work[- ]item) #?\d+\b|\bmigrations? \d{4}\b|\b\d{4}_[a-z_]+\.sql\b", re.IGNORECASE)


def _files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        path = ROOT / source
        candidates = [path] if path.is_file() else path.rglob("*")
        files += [
            file for file in candidates
            if file.is_file() and file.suffix in SUFFIXES and not SKIPPED_PARTS.intersection(file.relative_to(ROOT).parts)
            and str(file.relative_to(ROOT)) not in READS_MIGRATIONS
        ]  # fmt: skip
    return files


def test_no_comment_or_doc_cites_a_work_item_or_a_migration_number() -> None:
    found = [
        f"{file.relative_to(ROOT)}:{number}: {line.strip()}"
        for file in _files()
        for number, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if HISTORY.search(line)
    ]
    assert not found, "name the thing instead:\n" + "\n".join(found)


def test_the_pattern_finds_what_it_is_for() -> None:
    for cited in ("(issue 13: within 10%", "migration 0012", "see db/migrations/0002_leases.sql", "work item 7"):
        assert HISTORY.search(cited), cited
    for fine in ("a page_token this server did not issue", "0.0012 s", "the leases table"):
        assert not HISTORY.search(fine), fine
