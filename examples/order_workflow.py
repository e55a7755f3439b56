"""An order workflow in remote mode: an orchestrator drives the run, a worker runs its steps.

    python examples/order_workflow.py --target 127.0.0.1:50051

The orchestrator creates a run, schedules its first step and follows the run's events
(watch_run); each time a step succeeds it schedules the next one, with the previous results as
input; after the last one it completes the run with an output. The worker (here a thread of the
same process; in production its own processes, as many as you like) runs the steps the server
hands it. The card gateway fails the first attempt, to show a retry.
"""

from __future__ import annotations

import argparse
import logging
import threading
import uuid
from datetime import timedelta

from workflowstate.client import (
    NonRetryableError,
    RunStatus,
    StepStatus,
    StepTask,
    Worker,
    WorkflowStateClient,
)

# --- the worker: one plain function per step --------------------------------


def reserve_stock(task: StepTask) -> dict:
    items = task.data["items"]
    if not items:
        raise NonRetryableError("an order needs at least one item")  # no retry can fix this
    return {"reservation": f"R-{len(items)}-{task.run_id[:8]}"}


def charge_card(task: StepTask) -> dict:
    if task.attempt == 1:
        raise TimeoutError("card gateway timed out")  # retried: the step has retries left
    return {"charged": task.data["amount"], "receipt": f"C-{task.step_id[:8]}"}


def ship_order(task: StepTask) -> dict:
    return {"tracking": f"T-{task.data['reservation']}"}


HANDLERS = {
    "orders.reserveStock": reserve_stock,
    "orders.chargeCard": charge_card,
    "orders.shipOrder": ship_order,
}

# --- the orchestrator: the steps in order, each fed by the results so far ---

STEPS = [("reserve", "orders.reserveStock"), ("charge", "orders.chargeCard"), ("ship", "orders.shipOrder")]


def orchestrate(client: WorkflowStateClient, order: dict) -> None:
    run = client.create_run("order", order, request_id=f"order-{order['order_id']}")
    print(f"run {run.run_id} started")
    data = dict(order)

    def schedule(index: int) -> None:
        name, rpc = STEPS[index]
        step = client.insert_step_state(run.run_id, name, rpc, data, retries=2, retry_delay=timedelta(0))
        client.set_step_scheduled(step.step_id)

    schedule(0)
    for event in client.watch_run(run.run_id):  # ends after the run's last event
        if event.run_status is not None:
            print(f"run {event.run_status.value}")
            continue
        change = event.step
        assert change is not None
        print(f"  {change.step_name:8} attempt {change.attempt}: {change.status.value}")
        if change.status is StepStatus.SUCCEEDED:
            data.update(client.get_step_state(run.run_id, change.step_name).result)
            index = [name for name, _ in STEPS].index(change.step_name) + 1
            if index < len(STEPS):
                schedule(index)
            else:
                client.update_run_status(run.run_id, RunStatus.COMPLETED, output=data)
        elif change.status is StepStatus.FAILED:
            state = client.get_step_state(run.run_id, change.step_name)
            if state.status is StepStatus.FAILED:  # no retry follows: the run fails
                client.update_run_status(run.run_id, RunStatus.FAILED, error=state.error)
    final = client.get_run(run.run_id)
    assert final is not None
    print(f"output {final.output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="the workflowstate server, host:port")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    with WorkflowStateClient(args.target) as client:
        worker = Worker(client, HANDLERS, max_in_flight=4)
        worker_thread = threading.Thread(target=worker.run)
        worker_thread.start()
        try:
            order = {"order_id": uuid.uuid4().hex[:8], "items": ["book", "pen"], "amount": 25}
            orchestrate(client, order)
        finally:
            worker.stop()
            worker_thread.join()


if __name__ == "__main__":
    main()
