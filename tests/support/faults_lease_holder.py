"""A lease holder process of the fault tests, to be paused (SIGSTOP) while it holds a run's lock.

    python faults_lease_holder.py TARGET RUN_ID STEP_ID TTL_SECONDS

It takes the run's lock with the Python client's ``run_lock``, prints ``held <fencing token>``,
then waits for a line on stdin. The test pauses it there, past the ttl, resumes it and sends the
line; it then makes its fenced write (a result for STEP_ID) without looking at ``lease.lost``,
like a holder that did not notice its pause, and prints ``written`` or ``refused <CODE> <message>``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

from workflowstate.client import WorkflowStateClient, WorkflowStateError


def main() -> None:
    target, run_id, step_id, ttl = sys.argv[1:5]
    with (
        WorkflowStateClient(target) as client,
        client.run_lock(run_id, ttl=timedelta(seconds=float(ttl)), holder="paused") as lease,
    ):
        print("held", lease.fencing_token, flush=True)
        sys.stdin.readline()
        print("lost" if lease.lost.is_set() else "not-lost", flush=True)
        try:
            lease.client.set_step_result(step_id, {"by": "the paused holder"})
        except WorkflowStateError as err:
            print("refused", err.status.name, err, flush=True)
        else:
            print("written", flush=True)


if __name__ == "__main__":
    main()
