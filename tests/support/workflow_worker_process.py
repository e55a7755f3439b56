"""A Python Worker process running the remote steps of test workflows.

    python workflow_worker_process.py TARGET RPC EFFECTS_DIR [FAILURE_MESSAGE]

Its handler records each call (support/workflow_effects.py), fails attempt 1 of every step on
purpose with FAILURE_MESSAGE (a retryable error, so the server's retry policy is exercised) unless
the step's data says {"fail_first": false}, and returns {"charged": data["amount"], "attempt": n}:
the behaviour of the Pikku example's `chargeCard` too. It prints
"subscribed" once its stream is subscribed, so a test starts work only when it can be served.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# Run as a script, this folder is on sys.path, not tests/: put it there for `support.` imports.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.workflow_effects import record_call  # noqa: E402

from workflowstate.client import StepTask, Worker, WorkflowStateClient


class _Subscribed(logging.Handler):
    """Prints "subscribed" when the SDK logs that the worker's stream is subscribed."""

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("worker %s subscribed"):
            print("subscribed", flush=True)


class PlannedFailure(Exception):
    """The failure of attempt 1 that every step gets by default."""


def main() -> None:
    target, rpc, effects = sys.argv[1:4]
    failure_message = sys.argv[4] if len(sys.argv) > 4 else "planned failure of {step}"
    sdk_log = logging.getLogger("workflowstate.client.worker")
    sdk_log.setLevel(logging.INFO)
    sdk_log.addHandler(_Subscribed())

    def handle(task: StepTask) -> dict[str, int]:
        record_call(effects, task.run_id, task.step_name, task.attempt)
        if task.attempt == 1 and task.data.get("fail_first", True):
            raise PlannedFailure(failure_message.format(step=task.step_name))
        return {"charged": task.data["amount"], "attempt": task.attempt}

    with WorkflowStateClient(target) as client:
        Worker(client, {rpc: handle}, max_in_flight=16).run()


if __name__ == "__main__":
    main()
