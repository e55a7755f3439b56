"""`python -m docs_reference` (from scripts/): every generated page, as one JSON object of path to Markdown.

The MkDocs hook runs this in a fresh process on every build, so that `mkdocs serve`, which rebuilds in one
long-lived process, documents the sources as they are now, not as they were when it first imported them.
"""

from __future__ import annotations

import json
import sys

from . import PAGES

json.dump({path: write() for path, write in PAGES.items()}, sys.stdout)
