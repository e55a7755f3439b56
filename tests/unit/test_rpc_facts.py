"""Each RPC's facts are written once, as method options in the contract, and read from there: the
effect (so the role) auth checks, the RPCs a Batch carries and which of those only read, the RPCs
the client retries, and the README's table of roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf.descriptor_pb2 import MethodOptions

from workflowstate.client._channel import RETRYABLE_METHODS
from workflowstate.server.rpc import rpc_facts as facts_reader
from workflowstate.server.rpc.auth import EFFECT_BY_REQUEST, EFFECT_OF, ROLE_FOR, STEP_WRITES, Effect
from workflowstate.server.rpc.batch import READS, RPC_OF, check_batchable
from workflowstate.v1 import rpc_facts_pb2
from workflowstate import v1 as pb

REPO = Path(__file__).resolve().parents[2]
SERVICE = pb.SERVICE_DESCRIPTOR


def declared(name: str) -> rpc_facts_pb2.RpcFacts:
    return SERVICE.methods_by_name[name].GetOptions().Extensions[rpc_facts_pb2.rpc_facts]


def idempotency(name: str) -> int:
    return SERVICE.methods_by_name[name].GetOptions().idempotency_level


def test_every_rpc_declares_its_effect_and_auth_reads_it() -> None:
    undeclared = [method.name for method in SERVICE.methods if declared(method.name).effect == rpc_facts_pb2.RPC_EFFECT_UNSPECIFIED]
    assert not undeclared, f"RPCs without an effect in their rpc_facts option: {undeclared}"
    assert {name: effect.name for name, effect in EFFECT_OF.items()} == {
        method.name: rpc_facts_pb2.RpcEffect.Name(declared(method.name).effect).removeprefix("RPC_EFFECT_") for method in SERVICE.methods
    }


def test_the_servers_effects_mirror_the_contracts() -> None:
    contract = {value.name.removeprefix("RPC_EFFECT_") for value in rpc_facts_pb2.RpcEffect.DESCRIPTOR.values if value.number}
    assert {effect.name for effect in Effect} == contract


def test_the_client_retries_exactly_the_unary_rpcs_declared_safe_to_repeat() -> None:
    safe = {
        method.name
        for method in SERVICE.methods
        if not (method.client_streaming or method.server_streaming)
        and idempotency(method.name) in (MethodOptions.NO_SIDE_EFFECTS, MethodOptions.IDEMPOTENT)
    }
    assert safe, "no RPC of the contract is declared safe to repeat"
    assert set(RETRYABLE_METHODS) == safe
    # Those whose repeat after a lost reply would answer otherwise than the first attempt did.
    assert not {"InsertStepState", "CreateRetryAttempt", "ClaimStep", "Batch", "DeleteRun", "CancelRuns"} & set(RETRYABLE_METHODS)


def test_batch_carries_exactly_the_rpcs_marked_batchable() -> None:
    batchable = {method.name for method in SERVICE.methods if declared(method.name).batchable}
    assert batchable, "no RPC of the contract is marked batchable"
    assert set(RPC_OF.values()) == batchable
    assert READS == {kind for kind, rpc in RPC_OF.items() if idempotency(rpc) == MethodOptions.NO_SIDE_EFFECTS}
    assert READS and READS < set(RPC_OF)


def test_a_batch_oneof_that_disagrees_with_the_options_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"batchable but not in the oneof \['CreateRun'\]"):
        check_batchable({kind: rpc for kind, rpc in RPC_OF.items() if rpc != "CreateRun"})
    with pytest.raises(RuntimeError, match=r"in the oneof but not batchable \['ListRuns'\]"):
        check_batchable({**RPC_OF, "list_runs": "ListRuns"})


def readme_auth_rows() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| effect | role | its paths |") :].split("\n\n", 1)[0]
    return [re.split(r"\s*\|\s*", line.strip("| ")) for line in table.splitlines()[2:]]


def test_the_readme_names_each_rpc_under_the_effect_its_option_declares() -> None:
    rows = readme_auth_rows()
    by_effect = {effect: row for effect in Effect for row in rows if row[0].startswith(effect.value)}
    assert set(by_effect) == set(Effect), f"effects without a row: {sorted(e.name for e in set(Effect) - set(by_effect))}"
    for effect, (_, role, paths) in by_effect.items():
        assert role == f"`{ROLE_FOR[effect].value}`", effect
        # The RPCs the row names, not those its asides compare them to ("as `CreateRun` does").
        named = set(re.findall(r"`([A-Z]\w+)`", re.sub(r"\([^)]*\)", "", paths)))
        declared_here = {rpc for rpc, its in EFFECT_OF.items() if its is effect}
        # Besides the RPCs that declare the effect: those whose request or step can give it.
        also = {rpc for rpc, by in EFFECT_BY_REQUEST.items() if by.effect is effect} | (STEP_WRITES if effect is Effect.WORKER_TASK else set())
        assert declared_here <= named, f"{effect.name}: the README leaves out {sorted(declared_here - named)}"
        assert named <= declared_here | also, f"{effect.name}: the README names {sorted(named - declared_here - also)}"


def test_the_facts_reader_is_the_one_the_server_uses() -> None:
    assert facts_reader.FACTS["GetRun"].reads_only and facts_reader.FACTS["GetRun"].batchable
    assert not facts_reader.FACTS["ClaimStep"].batchable and facts_reader.FACTS["WatchRun"].streaming
