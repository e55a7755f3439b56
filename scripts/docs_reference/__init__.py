"""The reference pages of the docs site, generated from the sources they document, never written by hand.

Each page is a function of one source: the API from the contract's descriptors with their comments
(api.py), the command line from its parser (cli.py), the error reasons from the server's outcomes and
error classes (reasons.py), the transition tables from server/state/transitions.py (transitions.py).
The MkDocs hook (docs_hooks.py, beside this package) adds them to the site at build time; nothing of
them is committed under docs/.
"""

from __future__ import annotations

from collections.abc import Callable

from . import api, cli, reasons, transitions

# Each generated page: its path under docs/ and the function that writes it.
PAGES: dict[str, Callable[[], str]] = {
    "reference/api.md": api.page,
    "reference/cli.md": cli.page,
    "reference/errors.md": reasons.page,
    "reference/transitions.md": transitions.page,
}
