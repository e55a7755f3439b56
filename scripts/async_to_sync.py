"""Generate the blocking client modules from their asyncio sources, so the two cannot drift.

The async module is the source; its blocking twin is the same code with
``async`` and ``await`` dropped (``async with`` and ``async for`` become plain
``with`` and ``for``) and the asyncio names swapped for the blocking ones
(``AsyncWorkflowStateClient`` -> ``WorkflowStateClient``, ``grpc.aio`` ->
``grpc``, ``asyncio.sleep`` -> ``time.sleep``...). The rewrite works on tokens,
not on the AST, so comments and the layout of docstrings survive; each module
adds a short table of exact text changes for the sentences that say something
else in the blocking world. Every table entry must be used, so a change of the
source that makes one stale fails here instead of silently. The result goes
through ``ruff format``, which makes it deterministic.

``--check`` generates into a scratch folder and fails when a checked-in file
differs (tests/test_client_generation.py runs it).

Usage: python scripts/async_to_sync.py [--check] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Whole names (identifiers, also inside strings and docstrings) of the async world and their blocking twins.
NAMES = {
    "AsyncWorkflowStateClient": "WorkflowStateClient",
    "AsyncLease": "Lease",
    "AsyncIterator": "Iterator",
    "AbstractAsyncContextManager": "AbstractContextManager",
    "WorkflowStateServiceAsyncStub": "WorkflowStateServiceStub",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "_lease_async": "_lease_sync",
    "_events_async": "_events_sync",
    "follow_async": "follow_sync",
    "_batch_async": "_batch_sync",
    "AsyncSender": "SyncSender",
    "open_channel_async": "open_channel_sync",
}

# Dotted names (in code): the module attribute of the async world and the blocking one.
DOTTED = {
    "grpc.aio": "grpc",
    "asyncio.sleep": "time.sleep",
}

# Inside strings: how the async examples and sentences read without asyncio.
STRING_PHRASES = {
    "async with ": "with ",
    "async for ": "for ",
    "await ": "",
}


@dataclass(frozen=True)
class Module:
    """One generated module: its source, its target, and the few sentences that differ."""

    source: str
    target: str
    drop_lines: tuple[str, ...] = ()
    """Exact lines of the source with no blocking counterpart (imports of asyncio)."""
    replace: dict[str, str] = field(default_factory=dict)
    """Exact text of the source and what the blocking module says instead."""


MODULES = (
    Module(
        "client/_async.py",
        "client/_sync.py",
        drop_lines=("import grpc.aio",),
        replace={
            '"""The asyncio client, over a ``grpc.aio`` channel.\n\nThe source of ``_sync.py``, the blocking client: change this module and run\n``scripts/async_to_sync.py``.\n"""': '"""The blocking client, over a ``grpc`` channel."""',
            "An asyncio client of a workflowstate server.\n\n    Create it inside the event loop that will use it. Use it as an async\n    context manager, or await :meth:`close`, to release the channel::": "A blocking client of a workflowstate server.\n\n    Use it as a context manager, or call :meth:`close`, to release the channel::",
            "gRPC on UNAVAILABLE before that (see ``retry``).\n": "gRPC on UNAVAILABLE before that (see ``retry``). Thread-safe, like the\n    gRPC channel it wraps.\n",
            "any later call raises ``grpc.aio.UsageError``.": "any later call raises ``ValueError``.",
            "for the duration of an ``async with`` block": "for the duration of a ``with`` block",
        },
    ),
    Module(
        "client/_events_async.py",
        "client/_events_sync.py",
        drop_lines=("import asyncio",),
        replace={
            '"""Following run events with the asyncio client: the driver of an ``EventFeed`` over ``grpc.aio`` streams.\n\nThe blocking twin, ``_events_sync``, is generated from this module by\n``scripts/async_to_sync.py``: change this one and run the script.\n"""': '"""Following run events with the blocking client: the driver of an ``EventFeed`` over ``grpc`` streams."""',
        },
    ),
)


def header(module: Module) -> str:
    return (
        f"# Generated from {module.source} by scripts/async_to_sync.py: do not edit.\n"
        f"# Change {module.source} and run `python scripts/async_to_sync.py`.\n"
    )


def _apply_exact(text: str, module: Module) -> str:
    for line in module.drop_lines:
        if text.count(line + "\n") != 1:
            raise SystemExit(f"{module.source}: the line to drop {line!r} is not there exactly once")
        text = text.replace(line + "\n", "")
    for old, new in module.replace.items():
        if text.count(old) != 1:
            raise SystemExit(f"{module.source}: the text to replace {old[:60]!r}... is not there exactly once")
        text = text.replace(old, new)
    return text


_NAME_IN_TEXT = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b")


def _blocking_string(text: str) -> str:
    for old, new in STRING_PHRASES.items():
        text = text.replace(old, new)
    return _NAME_IN_TEXT.sub(lambda match: NAMES[match.group(1)], text)


def _blocking_dotted(dotted: str) -> str:
    for old, new in DOTTED.items():
        if dotted == old or dotted.startswith(old + "."):
            return new + dotted[len(old) :]
    return ".".join(NAMES.get(part, part) for part in dotted.split("."))


def to_sync(text: str) -> str:
    """The blocking twin of async module text: the token rewrite, before formatting."""
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        return line_starts[position[0] - 1] + position[1]

    tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)]
    edits: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == tokenize.NAME and token.string in ("async", "await"):
            # Drop the keyword and the space after it.
            edits.append((offset(token.start), offset(tokens[i + 1].start), ""))
        elif token.type == tokenize.NAME:
            end = i
            while (
                end + 2 < len(tokens)
                and tokens[end + 1].string == "."
                and tokens[end + 2].type == tokenize.NAME
                and tokens[end + 1].end == tokens[end + 2].start
            ):
                end += 2
            dotted = "".join(t.string for t in tokens[i : end + 1])
            blocking = _blocking_dotted(dotted)
            if blocking != dotted:
                edits.append((offset(token.start), offset(tokens[end].end), blocking))
            i = end
        elif token.type == tokenize.STRING:
            blocking = _blocking_string(token.string)
            if blocking != token.string:
                edits.append((offset(token.start), offset(token.end), blocking))
        i += 1
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text


def _format(text: str, target: str) -> str:
    # ruff reads pyproject.toml for the line length: run it from the repo with the target's name.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", target, "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"ruff format failed on {target}:\n{result.stderr}")
    return result.stdout


def generate(module: Module) -> str:
    """The text of ``module.target``, generated from ``module.source``."""
    source = (REPO / module.source).read_text()
    return _format(header(module) + to_sync(_apply_exact(source, module)), module.target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when a checked-in file differs from its generation")
    parser.add_argument("--out", type=Path, help="write into this folder instead of the repo")
    args = parser.parse_args()
    out = args.out or (Path(tempfile.mkdtemp(prefix="async-to-sync-")) if args.check else REPO)
    drifted = []
    for module in MODULES:
        text = generate(module)
        target = out / module.target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if args.check and text != (REPO / module.target).read_text():
            drifted.append(module.target)
    if drifted:
        print(f"generated modules differ from their async sources: {', '.join(drifted)}", file=sys.stderr)
        print("run `python scripts/async_to_sync.py` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
