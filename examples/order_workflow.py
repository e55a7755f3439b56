"""An order workflow, durable: the workflow is plain Python, an engine drives it, a worker runs its remote step.

    python examples/order_workflow.py --target 127.0.0.1:50051

``fulfil`` reserves the stock (a local step), charges the card (a remote step, run by whichever
Worker serves ``orders.chargeCard``, in any language) and ships (a local step). The card gateway
fails the first attempt, to show the server's retry. Every step is recorded in the run: if the
process dies, any other engine with this workflow replays ``fulfil`` from the run's history and
goes on where it stopped, without running a recorded step again. (Before the engine, this example
was an orchestrator written by hand: follow the run's events, schedule the next step, complete
the run, and nothing to resume a run whose orchestrator died. The engine does all of it.)

Here the engine and the worker are tasks of one process; in production each runs in its own
processes (``python -m workflowstate.workflows examples.order_workflow`` for the engine), as many
as you like.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from workflowstate.client import AsyncWorker, AsyncWorkflowStateClient, NonRetryableError, StepTask
from workflowstate.workflows import WorkflowContext, WorkflowEngine, workflow

# --- the steps: plain functions ------------------------------------------------


def reserve_stock(order: dict[str, Any], run_id: str) -> dict[str, str]:
    items = order["items"]
    if not items:
        raise NonRetryableError("an order needs at least one item")
    return {"reservation": f"R-{len(items)}-{run_id[:8]}"}


async def charge_card(task: StepTask) -> dict[str, Any]:  # run by the worker
    if task.attempt == 1:
        raise TimeoutError("card gateway timed out")  # retried by the server: the step has retries left
    return {"charged": task.data["amount"], "receipt": f"C-{task.step_id[:8]}"}


def ship_order(reservation: str) -> dict[str, str]:
    return {"tracking": f"T-{reservation}"}


# --- the workflow: the steps in order, each fed by the results so far -----------


@workflow("order")
async def fulfil(ctx: WorkflowContext, order: dict[str, Any]) -> dict[str, Any]:
    reserved = await ctx.step("reserve", reserve_stock, order, ctx.run_id)
    charged = await ctx.call("charge", "orders.chargeCard", {"amount": order["amount"]}, retries=2, retry_delay=timedelta(0))
    shipped = await ctx.step("ship", ship_order, reserved["reservation"], retries=2)
    return {**order, **reserved, **charged, **shipped}


async def main(target: str) -> None:
    async with AsyncWorkflowStateClient(target) as client:
        worker = AsyncWorker(client, {"orders.chargeCard": charge_card}, max_in_flight=4)
        engine = WorkflowEngine(client, [fulfil])
        running = [asyncio.create_task(worker.run()), asyncio.create_task(engine.run())]
        try:
            order = {"order_id": uuid.uuid4().hex[:8], "items": ["book", "pen"], "amount": 25}
            run_id = await engine.start(fulfil, order, request_id=f"order-{order['order_id']}")
            print(f"run {run_id} started")
            output = await engine.result(run_id, timeout=timedelta(minutes=1))
            for attempt in await client.get_run_history(run_id):
                print(f"  {attempt.step_name:8} attempt {attempt.attempt}: {attempt.status.value}")
            print("run completed")
            print(f"output {output}")
        finally:
            engine.stop()
            await worker.stop()
            await asyncio.gather(*running)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="the workflowstate server, host:port")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(parser.parse_args().target))
