"""Who may call what, without a server: the method table, the token file, the client's token."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflowstate.client._channel import TOKEN_VARIABLE, bearer
from workflowstate.server.ops.ports import is_loopback
from workflowstate.server.rpc.auth import EFFECT_BY_REQUEST, EFFECT_OF, REQUIRED, ROLE_FOR, SERVICE, STEP_WRITES, Effect, effect_of, required_role
from workflowstate.server.rpc.batch import RPC_OF
from workflowstate.server.rpc.tokens import COVERS, Role, TokenFileError, parse_token_file, read_token_file, token_hash, token_line
from workflowstate import v1 as pb

RPCS = {method.name for method in SERVICE.methods}


def test_every_rpc_has_an_effect() -> None:
    # A new RPC lands here first: decide what it does (its rpc_facts option in the proto); its role follows from the effect.
    undecided = RPCS - set(EFFECT_OF)
    assert not undecided, f"RPCs without an effect in their rpc_facts option: {sorted(undecided)}"


def test_every_effect_has_one_role_and_some_path() -> None:
    assert set(ROLE_FOR) == set(Effect)
    reached = set(EFFECT_OF.values()) | {by_request.effect for by_request in EFFECT_BY_REQUEST.values()}
    # Taking a worker's task is StreamStepTasks' effect, and that of the step writes on a worker's task.
    assert reached == set(Effect)
    assert STEP_WRITES <= set(EFFECT_OF)


def test_the_table_names_only_rpcs_of_the_service() -> None:
    assert set(EFFECT_OF) <= RPCS, f"not RPCs of {SERVICE.full_name}: {sorted(set(EFFECT_OF) - RPCS)}"
    assert set(EFFECT_BY_REQUEST) <= set(EFFECT_OF)
    assert REQUIRED == {rpc: ROLE_FOR[effect] for rpc, effect in EFFECT_OF.items()}


def test_every_batch_operation_is_an_rpc_of_the_table() -> None:
    assert set(RPC_OF.values()) <= set(EFFECT_OF)


def test_a_cancel_is_a_cancel_whichever_rpc_makes_it() -> None:
    assert EFFECT_OF["CancelRun"] is EFFECT_OF["CancelRuns"] is Effect.CANCEL_RUN
    assert effect_of("UpdateRunStatus", pb.UpdateRunStatusRequest(status=pb.RUN_STATUS_CANCELLED)) == (
        Effect.CANCEL_RUN,
        "UpdateRunStatus to RUN_STATUS_CANCELLED",
    )
    for status in (pb.RUN_STATUS_COMPLETED, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_SUSPENDED, pb.RUN_STATUS_RUNNING):
        assert effect_of("UpdateRunStatus", pb.UpdateRunStatusRequest(status=status)) == (Effect.DRIVE_RUN, "call UpdateRunStatus")
    assert ROLE_FOR[Effect.CANCEL_RUN] is Role.ADMIN


def test_an_rpc_outside_the_table_needs_admin_and_health_needs_nothing() -> None:
    assert required_role(f"/{SERVICE.full_name}/DeleteEverything") is Role.ADMIN
    assert required_role("/some.other.Service/Call") is Role.ADMIN
    assert required_role("/grpc.health.v1.Health/Check") is None
    assert required_role("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") is Role.READ
    assert required_role(f"/{SERVICE.full_name}/StreamStepTasks") is Role.WORKER


def test_roles_cover_what_the_issue_says() -> None:
    assert COVERS[Role.READ] == {Role.READ}
    assert COVERS[Role.WORKER] == {Role.READ, Role.WORKER}
    assert COVERS[Role.WRITE] == {Role.READ, Role.WRITE}
    assert COVERS[Role.ADMIN] == set(Role)


HASH_A = token_hash("a").hex()
HASH_B = token_hash("b").hex()


def test_the_token_file_takes_comments_blank_lines_and_any_case() -> None:
    text = f"# tokens\n\n{HASH_A} read   # the dashboard\n  {HASH_B.upper()}\tADMIN\n"
    assert parse_token_file(text, "f") == {token_hash("a"): Role.READ, token_hash("b"): Role.ADMIN}
    assert parse_token_file(token_line("a", Role.WORKER, "ci"), "f") == {token_hash("a"): Role.WORKER}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"# x\n{HASH_A}\n", "f, line 2: expected '<sha256 of the token, 64 hex digits> <role>', got 1 fields"),
        (f"{HASH_A} read extra\n", "f, line 1: expected"),
        (f"\n\n{HASH_A[:-1]}z read\n", "f, line 3: the first field must be the token's SHA-256 as 64 hex digits"),
        (f"{HASH_A} reader\n", "f, line 1: unknown role 'reader' (roles: read, worker, write, admin)"),
        (f"{HASH_A} read\n{HASH_B} write\n{HASH_A.upper()} admin\n", "f, line 3: the same token hash is already on line 1"),
        ("# nothing\n", "f: no token in the file"),
    ],
)
def test_a_bad_token_file_is_refused_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(TokenFileError) as refused:
        parse_token_file(text, "f")
    assert message in str(refused.value)


def test_a_token_put_where_the_hash_or_role_goes_is_never_echoed() -> None:
    token = "yJYC-k9sPPYsJVxuBqxa36IcEVo2R3ddmdn-kxatQgc"
    for text in (f"{token} read\n", f"{HASH_A} {token}\n"):
        with pytest.raises(TokenFileError) as refused:
            parse_token_file(text, "f")
        assert token not in str(refused.value)


def test_an_unreadable_token_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"cannot read .*missing: No such file or directory"):
        read_token_file(tmp_path / "missing")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(TokenFileError, match="not UTF-8 text"):
        read_token_file(tmp_path / "binary")


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.0.1:0", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("unix:/tmp/ws.sock", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.5:50051", False),
        ("db.example.com:50051", False),
    ],
)
def test_loopback_addresses(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_the_client_token_comes_from_the_argument_or_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    assert bearer(None) is None
    assert bearer("abc") == ("authorization", "Bearer abc")
    monkeypatch.setenv(TOKEN_VARIABLE, "from-env")
    assert bearer(None) == ("authorization", "Bearer from-env")
    assert bearer("given") == ("authorization", "Bearer given")  # the argument wins
    monkeypatch.setenv(TOKEN_VARIABLE, "")
    assert bearer(None) is None


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "naïve"])
def test_a_token_no_header_can_carry_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(ValueError) as refused:
        bearer(token)
    assert "printable ASCII" in str(refused.value)
    assert not token or token not in str(refused.value)
