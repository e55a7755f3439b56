"""--schema is a plain lower-case PostgreSQL identifier: anything else stops the start (exit 2)
before the database is touched, and a legal odd name (a reserved word, the longest name) migrates
and serves, with no function body holding the schema's name."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import psycopg
import pytest
from psycopg import sql
from support.flows import new_run

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

RULE = "the schema name must be 1 to 63 lower-case letters, digits and '_', not starting with a digit"


def _serve(database_url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "workflowstate.server", "serve", "--listen", "127.0.0.1:0", "--http-listen", "off", "--database-url", database_url]
    clean = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, env={**clean, **(env or {})})


@pytest.mark.parametrize(
    "name",
    [
        "x') || (SELECT current_user) || ('",  # a subquery, had it landed in a string literal
        "a$$b",  # ends a function body written between $$
        'Odd "schema"; DROP TABLE x; --',
        "Workflows",
        "1st",
        "w" * 64,
        "",
    ],
)
def test_a_crafted_schema_name_is_refused_before_the_database_is_touched(database_url: str, db: psycopg.Connection, name: str) -> None:
    result = _serve(database_url, "--schema", name)
    assert result.returncode == 2, result.stderr
    assert f"argument --schema: {RULE}, got {name!r}" in result.stderr
    assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)).fetchone() == (0,)


def test_the_variable_is_checked_like_the_flag(database_url: str) -> None:
    result = _serve(database_url, env={"WORKFLOWSTATE_SCHEMA": "a$$b"})
    assert result.returncode == 2 and "WORKFLOWSTATE_SCHEMA" in result.stderr and RULE in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["select", "_" + "x9" * 31])
def test_a_legal_odd_name_migrates_and_serves(start_server, db: psycopg.Connection, name: str) -> None:
    db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))  # a fresh migration
    server = start_server(schema=name)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub, workflow="odd")
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json="1"))
        events = sql.SQL("SELECT count(*) FROM {} WHERE run_id = %s").format(sql.Identifier(name, "run_events"))
        assert db.execute(events, (run.run_id,)).fetchone() == (2,)  # written by the schema's trigger function
        stub.DeleteRun(pb.DeleteRunRequest(run_id=run.run_id))
        assert db.execute(events, (run.run_id,)).fetchone() == (0,)  # deleted by another
    functions = db.execute(
        "SELECT p.proname, p.prosrc, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
        (name,),
    ).fetchall()
    assert functions
    # The bodies name the schema's tables through their search_path, never the schema itself.
    assert [proname for proname, source, _ in functions if f'"{name}"' in source or f"{name}." in source] == []
