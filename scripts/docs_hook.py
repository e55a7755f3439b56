"""The MkDocs hook (mkdocs.yml `hooks:`) that adds the generated reference pages to the site at build time.

Each page of docs_reference.PAGES is written from its source on every build, and on every rebuild of
`mkdocs serve`, which also watches those sources: the site never holds a copy that could drift.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

SCRIPTS = Path(__file__).resolve().parent


def generated_pages() -> dict[str, str]:
    """Each generated page's Markdown by its path under docs/, written by a fresh process: one that imported the
    sources once (`mkdocs serve`) would keep documenting them as they were then."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPTS), os.environ.get("PYTHONPATH")]))}
    written = subprocess.run(
        [sys.executable, "-m", "docs_reference"], env=environment, capture_output=True, text=True, check=False
    )
    if written.returncode != 0:
        raise PluginError(f"the reference pages could not be generated:\n{written.stderr}")
    pages: dict[str, str] = json.loads(written.stdout)
    return pages


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    for path, content in generated_pages().items():
        # A page written under docs/ by hand at a generated page's path would be a copy that drifts: refuse it.
        if files.get_file_from_path(path) is not None:
            raise PluginError(f"docs/{path} is generated at build time (scripts/docs_reference): delete the file in docs/")
        files.append(File.generated(config, path, content=content))
    return files
