"""Each RPC's facts as the contract writes them: its method options, read from the descriptors.

The proto says once, on each RPC of WorkflowStateService, what it does to the state (the
`rpc_facts` option's effect, which decides the role it needs: auth.py), whether a Batch may carry
it (its `batchable`) and whether it is safe to send twice (the standard `idempotency_level`). The
server reads them here; nothing else restates them.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from workflowstate.v1 import rpc_facts_pb2
from workflowstate import v1 as pb

SERVICE = pb.SERVICE_DESCRIPTOR

_EFFECT_PREFIX = "RPC_EFFECT_"


@dataclass(frozen=True)
class RpcFacts:
    """What the contract says of one RPC besides its messages."""

    name: str
    # The name of its RpcEffect without the prefix ("READ", "MOVE_STEP"); None when unset.
    effect: str | None
    batchable: bool
    # Declared NO_SIDE_EFFECTS: it writes nothing.
    reads_only: bool
    streaming: bool


def facts_of(method: MethodDescriptor) -> RpcFacts:
    """The facts of one RPC, from its options."""
    options = method.GetOptions()
    declared = options.Extensions[rpc_facts_pb2.rpc_facts]
    effect = rpc_facts_pb2.RpcEffect.Name(declared.effect).removeprefix(_EFFECT_PREFIX)
    return RpcFacts(
        name=method.name,
        effect=None if declared.effect == rpc_facts_pb2.RPC_EFFECT_UNSPECIFIED else effect,
        batchable=declared.batchable,
        reads_only=options.idempotency_level == MethodOptions.NO_SIDE_EFFECTS,
        streaming=method.client_streaming or method.server_streaming,
    )


# Every RPC of the service, by name, in the order of the proto.
FACTS: dict[str, RpcFacts] = {method.name: facts_of(method) for method in SERVICE.methods}

# The names of RpcEffect's values without the prefix: auth.py's Effect has exactly these.
EFFECT_NAMES: frozenset[str] = frozenset(
    value.name.removeprefix(_EFFECT_PREFIX)
    for value in rpc_facts_pb2.RpcEffect.DESCRIPTOR.values
    if value.number != rpc_facts_pb2.RPC_EFFECT_UNSPECIFIED
)

__all__ = ["EFFECT_NAMES", "FACTS", "SERVICE", "RpcFacts", "facts_of"]
