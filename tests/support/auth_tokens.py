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
# A second worker token: another worker's, as another service of the same deployment has.
OTHER_WORKER_TOKEN = f"test-other-worker-{uuid.uuid4().hex}"


def metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def write_token_file(folder: Path) -> Path:
    """A token file giving each of TOKENS its role, and OTHER_WORKER_TOKEN worker; the path, for --auth-tokens."""
    tokens = folder / "tokens.txt"
    lines = [token_line(TOKENS[role], role, role.value) for role in Role] + [token_line(OTHER_WORKER_TOKEN, Role.WORKER, "another worker")]
    tokens.write_text("# one token per role, and another worker's\n" + "".join(line + "\n" for line in lines))
    return tokens


def streams_as(stub: pb_grpc.WorkflowStateServiceStub, role: Role, token: str | None = None) -> types.SimpleNamespace:
    """An object with the stub's StreamStepTasks sending `token` (default: `role`'s), for support.task_stream.TaskStream."""
    return types.SimpleNamespace(StreamStepTasks=functools.partial(stub.StreamStepTasks, metadata=metadata(token or TOKENS[role])))
