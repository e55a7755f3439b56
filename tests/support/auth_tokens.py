"""Bearer tokens for tests of a server started with --auth-tokens: one token per role."""

from __future__ import annotations

import functools
import types
import uuid
from pathlib import Path

from workflowstate.server.rpc.tokens import Role, token_line
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

# Fresh per test session, so no token of a test can match another server's file.
TOKENS = {role: f"test-{role.value}-{uuid.uuid4().hex}" for role in Role}


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def write_token_file(folder: Path) -> Path:
    """A token file giving each of TOKENS its role; the path, for --auth-tokens."""
    tokens = folder / "tokens.txt"
    tokens.write_text("# one token per role\n" + "".join(token_line(TOKENS[role], role, role.value) + "\n" for role in Role))
    return tokens


def streams_as(stub: pb_grpc.WorkflowStateServiceStub, role: Role) -> types.SimpleNamespace:
    """An object with the stub's StreamStepTasks sending `role`'s token (for support.task_stream.TaskStream)."""
    return types.SimpleNamespace(StreamStepTasks=functools.partial(stub.StreamStepTasks, metadata=metadata(TOKENS[role])))
