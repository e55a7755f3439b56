"""The MkDocs hook (mkdocs.yml `hooks:`) that adds the generated reference pages to the site at build time.

Each page of docs_reference.PAGES is written from its source on every build (and on every reload of
`mkdocs serve`, which also watches those sources), so the site never holds a copy that could drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

# MkDocs loads a hook from its path, not as a module of a package: make its neighbour importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_reference import PAGES  # noqa: E402


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    for path, write in PAGES.items():
        files.append(File.generated(config, path, content=write()))
    return files
