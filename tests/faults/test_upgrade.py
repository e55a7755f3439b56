"""An upgrade under load, as the README's "Upgrades" describes it: a database migrated by the previous
release, served by a server of that release while clients write; this release's migrations applied
under it; a server of this release started beside it, then the old one stopped. Every write
either server acknowledged is in the database, and none is half-applied.

Both servers run from copies of their release's packages (support/release_trees.py): the previous
release's from git, this one's from the working tree plus one migration made here, of the kind the
policy allows (a column with a default on the runs table, an index on it, a new table). Without it
this release would have no migration newer than the previous release's, and the procedure would not
be exercised; with a real newer migration, that one runs too, before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from conftest import FAST_SERVER_ARGS, assert_no_internal_errors
from psycopg import sql
from support.faults_processes import SUPPORT, child
from support.faults_writers import broken_promises, from_journal
from support.release_trees import export_previous_release, package_root, previous_release_paths, this_release_root
from support.server_process import ServerProcess
from support.waiting import wait_in_database

WRITERS = 4
# Lifecycles each writer process completes after its moment: the migration applied (the old server),
# the old server stopped (the new one).
AFTER = 20
TIMEOUT = 60.0

# Allowed by the policy: added, never taken away, no table's column list changed (a column added to a
# table the previous release returns with `*` breaks its prepared statements: README, Upgrades). The
# index is built under the old server's writes, which wait for it.
PROBE_MIGRATION = """-- A migration of the kind the upgrade policy allows, made by tests/faults/test_upgrade.py.
CREATE INDEX runs_by_workflow_and_status ON {schema}.runs (workflow, status);
CREATE TABLE {schema}.upgrade_probe (probe_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL);
CREATE FUNCTION {schema}.upgrade_probe_runs(of_workflow text) RETURNS bigint LANGUAGE sql STABLE
    SET search_path FROM CURRENT AS $$ SELECT count(*) FROM runs WHERE workflow = of_workflow $$;
"""


def with_probe_migration(packages: Path) -> int:
    """Add the probe migration after the release's last one; return its version."""
    folder = packages / "workflowstate" / "server" / "db" / "migrations"
    version = max(int(path.name[:4]) for path in folder.glob("[0-9][0-9][0-9][0-9]_*.sql")) + 1
    (folder / f"{version:04d}_upgrade_probe.sql").write_text(PROBE_MIGRATION, encoding="utf-8")
    return version


def applied_versions(db: psycopg.Connection, schema: str) -> list[int]:
    table = sql.Identifier(schema, "schema_migrations")
    return [row[0] for row in db.execute(sql.SQL("SELECT version FROM {} ORDER BY version").format(table))]


def migrate_with(packages: Path, database_url: str, schema: str) -> list[int]:
    """Run the migrations of the release in `packages`, as a deploy step; the versions applied."""
    env = {**os.environ, "PYTHONPATH": str(packages)}
    done = subprocess.run(
        [sys.executable, str(SUPPORT / "migrate_process.py"), database_url, schema],
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


@contextlib.contextmanager
def writer_process(target: str, journal: Path) -> Iterator[subprocess.Popen[str]]:
    with child("faults_writer_process.py", target, str(journal), str(WRITERS), str(AFTER), str(TIMEOUT), stdin=True) as process:
        yield process


def finish(process: subprocess.Popen[str], since: float) -> None:
    """Tell the writer process to complete AFTER lifecycles started after `since`, and wait for it."""
    assert process.stdin is not None
    process.stdin.write(f"{since!r}\n")
    process.stdin.close()
    assert process.wait(TIMEOUT + 30) == 0, "a writer process failed (its error is above)"


def completed_runs(schema: str) -> str:
    return f"(SELECT count(*) FROM {schema}.runs WHERE workflow = 'faults-writer' AND status = 'completed') >= {{}}"


def test_an_upgrade_under_a_running_previous_release_server_loses_no_write(database_url: str, db: psycopg.Connection, tmp_path: Path) -> None:
    previous = package_root(export_previous_release(tmp_path / "previous"), tmp_path / "previous-packages")
    this = this_release_root(tmp_path / "this-packages")
    probe = with_probe_migration(this)
    schema = f"upgrade_{uuid.uuid4().hex[:10]}"
    servers: list[ServerProcess] = []
    try:
        old = ServerProcess(database_url, schema, *FAST_SERVER_ARGS, code=previous)
        servers.append(old.start())
        released = applied_versions(db, schema)  # by the old server's start-up: its release's migrations, no more
        assert released == list(range(1, len(previous_release_paths("server/db/migrations")) + 1)), released
        with writer_process(old.target, tmp_path / "journal-old.json") as to_old:
            wait_in_database(db, completed_runs(schema), (AFTER,), timeout=TIMEOUT)

            newly_applied = migrate_with(this, database_url, schema)
            assert newly_applied == list(range(released[-1] + 1, probe + 1))
            migrated = time.monotonic()

            new = ServerProcess(database_url, schema, *FAST_SERVER_ARGS, code=this)
            servers.append(new.start())
            with writer_process(new.target, tmp_path / "journal-new.json") as to_new:
                finish(to_old, migrated)  # the old server served AFTER lifecycles on the migrated schema
                assert old.stop() == 0, old.log_text()[-4000:]
                finish(to_new, time.monotonic())  # and the new one AFTER more, after the old one stopped
            # A server of the previous release serves the migrated schema while it runs, but does not start on it.
            again = ServerProcess(database_url, schema, *FAST_SERVER_ARGS, code=previous)
            servers.append(again)
            with pytest.raises(RuntimeError, match="did not become ready"):
                again.start()
            assert f"is at migration {probe}, newer than this server knows" in again.log_text()
            assert new.stop() == 0, new.log_text()[-4000:]
    finally:
        for server in servers:
            server.kill()
            assert_no_internal_errors(server)

    calls, lifecycles = [], []
    for name in ("journal-old.json", "journal-new.json"):
        more_calls, more_lifecycles = from_journal(json.loads((tmp_path / name).read_text()))
        calls += more_calls
        lifecycles += more_lifecycles
    errors = [(call.op, call.code, call.message) for call in calls if call.code != grpc.StatusCode.OK]
    print(f"\n{len(calls)} calls in {len(lifecycles)} lifecycles over the upgrade; migrations applied under the old server: {newly_applied}")
    assert errors == [], "a call failed during the upgrade"
    assert broken_promises(db, schema, lifecycles) == []
    assert applied_versions(db, schema) == list(range(1, probe + 1))
    counted = db.execute(sql.SQL("SELECT {}('faults-writer')").format(sql.Identifier(schema, "upgrade_probe_runs"))).fetchone()
    assert counted == (len(lifecycles) - sum(1 for life in lifecycles if not life.acknowledged),)
