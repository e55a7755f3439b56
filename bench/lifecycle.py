"""The gRPC lifecycle: one step of one run, as six RPCs of the async client, in a closed loop.

With the client's batching on (its default), the calls that the concurrent lifecycles make in the
same loop turn travel together as one Batch; ``batching=False`` sends each call on its own, as
before batching existed, for the row beside it.
"""

from __future__ import annotations

from workflowstate.client import AsyncWorkflowStateClient, RunStatus

from . import payloads
from .loop import closed_loop
from .stats import Tally


async def one_lifecycle(client: AsyncWorkflowStateClient) -> None:
    """Create a run, insert its step, run it, store its result, read it back, complete the run."""
    run = await client.create_run(payloads.WORKFLOW, payloads.RUN_INPUT)
    step = await client.insert_step_state(
        run.run_id, payloads.STEP_NAME, payloads.RPC_NAME, payloads.STEP_DATA, retries=payloads.RETRIES
    )
    await client.set_step_running(step.step_id)
    await client.set_step_result(step.step_id, payloads.STEP_RESULT)
    await client.get_step_state(run.run_id, payloads.STEP_NAME)
    await client.update_run_status(run.run_id, RunStatus.COMPLETED, output=payloads.RUN_OUTPUT)


async def measure(
    target: str, concurrency: int, *, warmup: float, seconds: float, batching: bool = True, connections: int = 1
) -> Tally:
    """``concurrency`` lifecycles at a time over one client, as one client process would run them;
    ``connections`` TCP connections, so they spread over that many processes of `serve --workers`."""
    async with AsyncWorkflowStateClient(target, batching=batching, connections=connections) as client:

        async def unit() -> None:
            await one_lifecycle(client)

        return await closed_loop([unit] * concurrency, warmup=warmup, seconds=seconds)
