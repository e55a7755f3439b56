"""`workflowstate serve` as operators run it: settings from variables checked like flags, one server
per port unless sharing is asked for, a non-zero exit when a worker process dies while stopping,
and JSON logs that stay JSON whatever writes to stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import grpc
import pytest
from psycopg import sql
from support.controllable_postgres import controllable_postgres
from support.flows import new_run
from support.polling import wait_until
from support.process_tree import ProcessId
from support.server_process import ServerProcess
from support.waiting import SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate.client import WorkflowStateClient
from workflowstate.server.ops.cli import build_parser
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SERVE = [sys.executable, "-m", "workflowstate.server", "serve"]


def _clean_env(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    return {**env, **variables}


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=60, env=env or _clean_env())


# Settings from variables.


@pytest.mark.parametrize(
    ("flag", "variable", "value", "message"),
    [
        ("--pool-size", "WORKFLOWSTATE_POOL_SIZE", "0", "must be positive"),
        ("--pool-size", "WORKFLOWSTATE_POOL_SIZE", "ten", "must be a positive whole number, not 'ten'"),
        ("--grace-period", "WORKFLOWSTATE_GRACE_PERIOD", "-1", "must be positive"),
        ("--event-retention", "WORKFLOWSTATE_EVENT_RETENTION", "soon", "must be a positive number, not 'soon'"),
        ("--retention-interval", "WORKFLOWSTATE_RETENTION_INTERVAL", "0", "must be positive"),
        ("--log-level", "WORKFLOWSTATE_LOG_LEVEL", "loud", "invalid choice: 'loud'"),
    ],
)
def test_a_variable_is_checked_like_its_flag_with_the_same_message(flag, variable, value, message) -> None:
    by_flag = _serve(flag, value, "--no-embedded")
    by_variable = _serve("--no-embedded", env=_clean_env(**{variable: value}))
    assert by_flag.returncode == by_variable.returncode == 2
    assert f"argument {flag}: {message}" in by_flag.stderr, by_flag.stderr
    assert f"{variable}: {message}" in by_variable.stderr, by_variable.stderr
    assert "Traceback" not in by_flag.stderr + by_variable.stderr


def test_help_works_whatever_the_variables_hold() -> None:
    result = subprocess.run(
        [*SERVE, "--help"], capture_output=True, text=True, timeout=60, env=_clean_env(WORKFLOWSTATE_POOL_SIZE="ten")
    )
    assert result.returncode == 0, result.stderr
    assert "--pool-size" in result.stdout and "WORKFLOWSTATE_POOL_SIZE" in result.stdout


def test_a_switch_variable_takes_only_on_or_off_words() -> None:
    result = _serve(env=_clean_env(WORKFLOWSTATE_NO_EMBEDDED="maybe"))
    assert result.returncode == 2 and "WORKFLOWSTATE_NO_EMBEDDED: must be one of" in result.stderr, result.stderr


def test_variables_set_the_defaults_and_flags_win(monkeypatch) -> None:
    monkeypatch.setenv("WORKFLOWSTATE_POOL_SIZE", "3")
    monkeypatch.setenv("WORKFLOWSTATE_NO_EMBEDDED", "true")
    monkeypatch.setenv("WORKFLOWSTATE_EVENT_RETENTION", "60")
    args = build_parser().parse_args(["serve"])
    assert (args.pool_size, args.no_embedded, args.event_retention) == (3, True, 60.0)
    assert build_parser().parse_args(["serve", "--pool-size", "4"]).pool_size == 4


# One server per port.


def _second_server(*args: str) -> tuple[bool, int, str]:
    """Start a server; whether it became ready, then its exit code and stderr (bounded waits)."""
    process = subprocess.Popen([*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_clean_env())
    try:
        assert process.stdout and process.stderr
        started = process.stdout.readline().startswith("workflowstate listening on ")  # "" once it exits
        if started:
            process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        return started, code, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(60)
        for pipe in (process.stdout, process.stderr):
            if pipe:
                pipe.close()


def test_a_second_server_on_a_port_in_use_refuses_to_start(start_server, unique) -> None:
    first = start_server(schema=f"port_{unique}")
    for extra in ([], ["--workers", "2"]):
        started, code, stderr = _second_server(
            "--listen", first.target, "--database-url", first.database_url, "--schema", first.schema, *extra
        )
        assert not started, f"a second server started beside the first ({extra})"
        assert code == 1
        assert f"another server already listens on {first.target}" in stderr and "--reuse-port" in stderr, stderr
    # The first one still serves.
    with grpc.insecure_channel(first.target) as channel:
        new_run(pb_grpc.WorkflowStateServiceStub(channel))


def test_servers_share_a_port_when_both_ask_to(start_server, unique) -> None:
    first = start_server("--reuse-port", schema=f"port_{unique}")
    second = start_server("--listen", first.target, "--reuse-port", schema=f"port_{unique}")
    assert second.target == first.target


# --workers: the exit code tells a crash while stopping.


def _gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped counts as exited)."""
    process = ProcessId.of(pid)
    return process is None or not process.alive()


def _worker_pids(server: ServerProcess) -> list[int]:
    """The pids of a `serve --workers N` server's workers, from its start line."""
    return next(json.loads(line) for line in server.log_text().splitlines() if '"pids": [' in line)["pids"]


def test_workers_stop_when_their_parent_is_killed(start_server, unique) -> None:
    server = start_server("--workers", "2", schema=f"workers_{unique}")
    workers = [ProcessId.of(pid) for pid in _worker_pids(server)]
    assert all(worker is not None and worker.alive() for worker in workers)
    server.kill()  # SIGKILL: the parent can forward nothing
    wait_until(lambda: not any(worker and worker.alive() for worker in workers), "both workers exited after their parent's SIGKILL", 30)


def test_a_worker_killed_while_stopping_makes_the_server_exit_non_zero(start_server, db, unique) -> None:
    server = start_server("--workers", "2", "--grace-period", "60", schema=f"workers_{unique}")
    pids = _worker_pids(server)
    outcome: list[object] = []
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        with db.transaction():
            # One call waits on our lock, so the worker serving it keeps draining after SIGTERM.
            db.execute(sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(sql.Identifier(server.schema, "runs")), (run.run_id,))

            def call() -> None:
                try:
                    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED), timeout=90)
                except grpc.RpcError as err:
                    outcome.append(err.code())

            caller = threading.Thread(target=call)
            caller.start()
            wait_in_database(db, SOMEONE_WAITS_FOR_A_LOCK)
            server.process.send_signal(signal.SIGTERM)
            # The idle worker stops; the draining one is killed before it can.
            wait_until(lambda: sum(_gone(pid) for pid in pids) == 1, "the idle worker stopped")
            [draining] = [pid for pid in pids if not _gone(pid)]
            os.kill(draining, signal.SIGKILL)
            code = server.process.wait(60)
        caller.join(60)
    assert code == 1, "a worker that crashed while stopping is not a clean stop"
    failed = [json.loads(line) for line in server.log_text().splitlines() if '"a worker failed while stopping"' in line]
    assert [(line["pid"], line["exit_code"]) for line in failed] == [(draining, -signal.SIGKILL)]
    assert outcome and outcome[0] != grpc.StatusCode.OK


# Stopping: within the grace period, whatever the database does.

STOP_GRACE = 2.0
STOP_BOUND = 4.0  # seconds past the grace period a busy machine may take to end the process


def test_sigterm_stops_the_server_within_its_grace_period_while_the_database_does_not_answer(unique) -> None:
    with controllable_postgres() as postgres:
        server = ServerProcess(postgres.url, f"stop_{unique}", "--grace-period", str(STOP_GRACE), "--health-interval", "0.2").start()
        try:
            with WorkflowStateClient(server.target, retry=False, timeout=timedelta(seconds=30)) as client:
                # A lease held: its stream's end releases the key in the database at the stop.
                with client.lease(f"key-{unique}", ttl=timedelta(seconds=30), holder="stop"):
                    postgres.freeze()
                    try:
                        server.process.send_signal(signal.SIGTERM)
                        try:
                            code = server.process.wait(STOP_GRACE + STOP_BOUND)
                        except subprocess.TimeoutExpired:
                            pytest.fail(f"still running {STOP_BOUND}s after its {STOP_GRACE}s grace period:\n{server.log_text()[-3000:]}")
                    finally:
                        postgres.thaw()
        finally:
            server.kill()
        # 0, or 1 when the last resort had to end it; never killed by a signal.
        assert code in (0, 1), server.log_text()[-3000:]


# JSON logs.


# A worker of `serve --workers N` whose parent died writes its logs into a pipe nobody reads any more.
_UNREAD_STDERR_SCRIPT = """
import logging, os, sys
from workflowstate.server.ops import logs
with logs.logging_to_stderr("info", "json"):
    print("ready", flush=True)
    sys.stdin.readline()  # the test has closed the reading end of stderr
    os.write(2, b'{"msg": "a line of a worker, relayed as it is"}\\n')
    for n in range(2000):  # far more than a pipe holds
        logging.getLogger("test").info("line %d", n)
        os.write(2, b"I0000 00:00:00 a line of gRPC's C core\\n" * 4)
print("done", flush=True)
"""


def test_json_logging_carries_on_once_nobody_reads_stderr() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _UNREAD_STDERR_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdin and process.stdout and process.stderr
        assert process.stdout.readline() == "ready\n"
        process.stderr.close()
        process.stdin.write("go\n")
        process.stdin.close()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail("logging blocked once the reader of stderr was gone")
        assert process.stdout.read() == "done\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(60)
        if process.stdout:
            process.stdout.close()


def test_every_stderr_line_is_json_in_json_mode_also_grpc_core_lines(database_url, monkeypatch, unique) -> None:
    # Verbose C-core logging, as an operator chasing a problem would set it: its lines go to fd 2.
    monkeypatch.setenv("GRPC_VERBOSITY", "info")
    servers = [
        ServerProcess(database_url, f"json_{unique}", "--log-format", "json"),
        ServerProcess(database_url, f"json_{unique}", "--log-format", "json", "--workers", "2"),
    ]
    try:
        for server in servers:
            server.start()
            for _ in range(4):  # new connections, spread over the workers
                with grpc.insecure_channel(server.target) as channel:
                    stub = pb_grpc.WorkflowStateServiceStub(channel)
                    stub.GetRun(pb.GetRunRequest(run_id=new_run(stub).run_id))
            assert server.stop() == 0
    finally:
        for server in servers:
            server.kill()
    for server in servers:
        lines = server.log_text().splitlines()
        assert lines
        for line in lines:
            assert isinstance(json.loads(line), dict), line
        records = [json.loads(line) for line in lines]
        assert any(record["logger"] == "workflowstate.server.stderr" for record in records), "gRPC's own lines were there, wrapped"
        assert sum(record["msg"] == "stopped" for record in records) == (2 if "--workers" in server.extra_args else 1)


def test_debug_logging_has_no_line_per_call_from_grpcs_event_loop_glue(database_url, unique) -> None:
    server = ServerProcess(database_url, f"debug_{unique}", "--log-format", "json", "--log-level", "debug")
    try:
        server.start()
        with grpc.insecure_channel(server.target) as channel:
            stub = pb_grpc.WorkflowStateServiceStub(channel)
            for _ in range(6):
                stub.GetRun(pb.GetRunRequest(run_id=new_run(stub).run_id))
        assert server.stop() == 0
    finally:
        server.kill()
    records = [json.loads(line) for line in server.log_text().splitlines()]
    assert sum(record["msg"] == "request" for record in records) >= 12, "the server's own debug lines are there"
    assert [record for record in records if "Loaded running loop" in record["msg"]] == []
