"""Code that handles a refusal recognises it by its reason (and metadata), never by the words of its
message: messages are written for people and may be reworded (README, Errors). Kept so for the
Python client, the TypeScript SDK, the Pikku adapter and the examples; the tests themselves are
reviewed by hand, since a bad-input message naming its field and bound is what some of them test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("client", "examples", "clients/typescript/packages/client/src", "clients/typescript/packages/pikku/src", "clients/typescript/examples")
SUFFIXES = {".py", ".ts"}
SKIPPED_PARTS = {"node_modules", "dist", "gen", "__pycache__"}
# A message (an error's, a status's details, a refused report's) looked into for words.
MATCHES_A_MESSAGE = re.compile(
    r"""["'/][^"'\n]*["'/]\s+(?:not\s+)?in\s+[\w.]*(?:message|details\(\))"""  # "words" in err.message
    r"""|\bin\s+str\(\s*(?:err|error|exc|e)\b"""  # "words" in str(err)
    r"""|(?:message|details\(\))\s*\.\s*(?:includes|startsWith|endsWith|startswith|endswith|find|indexOf|match)\("""
    r"""|\.test\([^)]*\.message\b"""  # /words/.test(err.message)
    r"""|re\.(?:search|match|fullmatch)\([^)]*(?:message|details\(\))"""
)


def _files() -> list[Path]:
    return [
        file
        for source in SOURCES
        for file in (ROOT / source).rglob("*")
        if file.is_file() and file.suffix in SUFFIXES and not SKIPPED_PARTS.intersection(file.relative_to(ROOT).parts)
    ]


def test_no_client_adapter_or_example_recognises_a_refusal_by_its_message() -> None:
    scanned = {str(file.relative_to(ROOT)) for file in _files()}
    assert {"clients/typescript/packages/pikku/src/workflow-service.ts", "client/_worker_protocol.py"} <= scanned, "the scan misses the sources"
    found = [
        f"{file.relative_to(ROOT)}:{number}: {line.strip()}"
        for file in _files()
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1)
        if MATCHES_A_MESSAGE.search(line)
    ]
    assert not found, "match the error's reason instead:\n" + "\n".join(found)
