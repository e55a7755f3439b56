"""The auth flags as operators meet them: a bad token file or client CA stops the start with a clear
message and exit code 2 (by flag or by variable), and `workflowstate token new` makes a token the
server then takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workflowstate.client import WorkflowStateClient
from workflowstate.server.rpc.tokens import Role, new_token, parse_token_file, token_hash, token_line

COMMAND = [sys.executable, "-m", "workflowstate.server"]
HASH = token_hash("t").hex()


def _run(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=60, env={**env, **variables})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read {path}: No such file or directory"),
        (f"# ok\n{HASH} read\nnot-a-hash write\n", "{path}, line 3: the first field must be the token's SHA-256 as 64 hex digits"),
        (f"{HASH} superuser\n", "{path}, line 1: unknown role 'superuser' (roles: read, worker, write, admin)"),
        (f"{HASH} read\n\n{HASH} admin\n", "{path}, line 3: the same token hash is already on line 1"),
    ],
    ids=["unreadable", "bad-line", "unknown-role", "duplicate"],
)
def test_a_bad_token_file_stops_the_start(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "tokens.txt"
    if content is not None:
        path.write_text(content)
    expected = message.format(path=path)
    by_flag = _run("serve", "--no-embedded", "--auth-tokens", str(path))
    by_variable = _run("serve", "--no-embedded", WORKFLOWSTATE_AUTH_TOKENS=str(path))
    assert by_flag.returncode == by_variable.returncode == 2
    assert f"argument --auth-tokens: {expected}" in by_flag.stderr, by_flag.stderr
    assert f"WORKFLOWSTATE_AUTH_TOKENS: {expected}" in by_variable.stderr, by_variable.stderr
    assert "Traceback" not in by_flag.stderr + by_variable.stderr


def test_a_client_ca_needs_tls_and_certificates(tmp_path: Path) -> None:
    from support.certificates import self_signed

    cert, key = self_signed(tmp_path)
    result = _run("serve", "--no-embedded", "--tls-client-ca", str(cert))
    assert result.returncode == 2
    assert "--tls-client-ca needs TLS: pass --tls-cert and --tls-key too" in result.stderr, result.stderr
    result = _run("serve", "--no-embedded", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(key))
    assert result.returncode == 2
    assert f"argument --tls-client-ca: {key} holds no PEM certificate" in result.stderr, result.stderr


def test_token_new_prints_a_token_once_and_its_line(start_server, tmp_path: Path, unique) -> None:
    result = _run("token", "new", "--role", "write", "--comment", "ci  deploys")
    assert result.returncode == 0, result.stderr
    token = next(line for line in result.stdout.splitlines() if line and not line.startswith("#"))
    line = result.stdout.splitlines()[-1]
    assert line == token_line(token, Role.WRITE, "ci deploys")
    assert parse_token_file(line, "out") == {token_hash(token): Role.WRITE}
    assert result.stdout.count(token) == 1  # the file line holds its hash, not the token
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(line + "\n")
    server = start_server("--auth-tokens", str(tokens))
    with WorkflowStateClient(server.target, token=token) as client:
        assert client.create_run(unique).workflow == unique


def test_token_new_needs_a_known_role() -> None:
    result = _run("token", "new", "--role", "root")
    assert result.returncode == 2 and "invalid choice: 'root'" in result.stderr


def test_new_tokens_never_start_with_a_dash() -> None:
    # URL-safe base64 starts with '-' once in 64 draws: 4096 draws would all miss it once in 10^28.
    tokens = [new_token() for _ in range(4096)]
    starting_with_a_dash = [token for token in tokens if token.startswith("-")]
    assert not starting_with_a_dash, starting_with_a_dash[:3]
    assert len(set(tokens)) == len(tokens)


def test_a_token_that_starts_with_a_dash_is_given_after_equals(start_server, tmp_path: Path, unique) -> None:
    # One made by hand (or by an older `token new`): the command line still takes it, written with '='.
    token = f"-{unique}-by-hand"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(token_line(token, Role.READ) + "\n")
    server = start_server("--auth-tokens", str(tokens))
    listed = _run("runs", "list", "--json", "--target", server.target, f"--token={token}")
    assert listed.returncode == 0, listed.stderr
    apart = _run("runs", "list", "--json", "--target", server.target, "--token", token)
    assert apart.returncode == 2
    assert "argument --token: expected one argument (a value that starts with '-' is given after '=': --token=-...)" in apart.stderr, apart.stderr
