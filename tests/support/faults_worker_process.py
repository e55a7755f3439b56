"""A worker process of the fault tests: the Python SDK's Worker, run as its own process so it can be killed.

    python faults_worker_process.py TARGET RPC WORKER_ID MARKER_DIR [HANG_ON_TASK]

Every handler returns {"worker": WORKER_ID, "attempt": n}, after failing attempt 1 of the steps
whose data says {"fail_first": true} (so the run has planned retries too). The process touches
MARKER_DIR/WORKER_ID.subscribed once its stream is subscribed, so a test schedules work only
when every worker can get some. With HANG_ON_TASK = k, the k-th task it gets never finishes:
its handler writes MARKER_DIR/WORKER_ID.hung ("step_id attempt") and blocks, so a test that
sees the file knows the process is mid-task, and can kill it there.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from datetime import timedelta
from pathlib import Path

from workflowstate.client import StepTask, Worker, WorkflowStateClient

TASK_LEASE = timedelta(seconds=3)


class PlannedFailure(Exception):
    """The failure of attempt 1 that a step asked for."""


class _SubscribedMarker(logging.Handler):
    """Touches the marker file when the SDK logs that its stream is subscribed."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.INFO)
        self._path = path

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("worker %s subscribed"):
            self._path.touch()


def main() -> None:
    target, rpc, worker_id, marker_dir = sys.argv[1:5]
    hang_on_task = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    markers = Path(marker_dir)
    sdk_log = logging.getLogger("workflowstate.client.worker")
    sdk_log.setLevel(logging.INFO)
    sdk_log.addHandler(_SubscribedMarker(markers / f"{worker_id}.subscribed"))
    handed_out = itertools.count(1)
    count_lock = threading.Lock()

    def handle(task: StepTask) -> dict:
        with count_lock:
            number = next(handed_out)
        if number == hang_on_task:
            hung = markers / f"{worker_id}.hung"
            hung.with_suffix(".tmp").write_text(f"{task.step_id} {task.attempt}")
            hung.with_suffix(".tmp").rename(hung)  # whole or absent, never half-written
            threading.Event().wait()  # until the test kills the process
        if task.data.get("fail_first") and task.attempt == 1:
            raise PlannedFailure(f"planned failure of {task.step_name}")
        return {"worker": worker_id, "attempt": task.attempt}

    with WorkflowStateClient(target) as client:
        Worker(client, {rpc: handle}, max_in_flight=4, task_lease=TASK_LEASE, worker_id=worker_id).run()


if __name__ == "__main__":
    main()
