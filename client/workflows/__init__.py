"""Durable workflows in Python on a workflowstate server: write the workflow, not the orchestrator.

    from workflowstate.workflows import WorkflowContext, WorkflowEngine, workflow

    @workflow("orders.fulfil")
    async def fulfil(ctx: WorkflowContext, order: dict) -> dict:
        stock, fraud = await asyncio.gather(
            ctx.step("reserve", reserve_stock, order, retries=3, retry_delay=timedelta(seconds=1)),
            ctx.step("fraud", check_fraud, order),
        )
        charge = await ctx.call("charge", "payments.charge", {"amount": order["amount"]}, retries=2)
        await ctx.sleep(timedelta(hours=1))
        return {"stock": stock, "charge": charge}

    engine = WorkflowEngine(client, [fulfil])     # an AsyncWorkflowStateClient
    await engine.run()                            # in as many processes as you like

The design
----------
*A run is its history.* Each durable operation of a workflow (``ctx.step``, ``ctx.call``,
``ctx.sleep``, ``ctx.now``, ``ctx.uuid``, ``ctx.child``) is a step of the run, stored by the
server like any other (``insert_step_state`` ... ``set_step_result``), so the dashboard, the CLI
and the Workers see Python workflows as they see Pikku's. To go on with a run, an engine replays
the workflow function from the start: each operation finds its step's record **by the step's
name** (``list_steps``, read once per drive); a step that succeeded answers with its recorded
result without running again, a failed one raises again, an open one is waited for or resumed.
Only when the replay asks for a name the history lacks is new work done.

*Determinism.* The function must take the same path through its steps on every replay: its
decisions may depend only on its input, the steps' results, ``ctx.state`` and the recorded values
``ctx.now()`` / ``ctx.uuid()`` (not on the clock, random numbers, the environment or I/O outside
steps). A replay that asks for a step the history lacks while the history has a step the replay
has not reached fails the run (error code ``NonDeterminism``) naming both. Before deciding, the
replay lets its other ``asyncio.gather`` branches catch up on their recorded steps (a replayed
step needs no I/O, so a few event-loop turns). The way out for changed code is a version:
``@workflow("name", version="2")`` next to the old function; each run keeps the version it was
created with (its ``graph_hash``) and is only driven by that version's function.

*One engine at a time.* A drive holds the run's lease (``run:<run_id>``, kept alive while it
runs) and makes every write through ``lease.client``, which carries the lease's fencing token: a
paused engine whose lease expired and was taken over is refused by the server and writes nothing.

*Resumption.* Events wake at once (``stream_run_events`` per workflow: a run created, a remote
step's outcome, a child run's end); timers (sleeps, retry delays) wake the drive that holds the
run at their time, which is recorded in the step (a sleep's ``wake_time``, a failure's
``failed_time``); the stalled-run scan (``list_stalled_runs`` every ``scan_interval``, runs
unmoved for ``stalled_after``) hands a dead engine's runs to a live one once its lease expires:
within ``max(lease_ttl, stalled_after) + scan_interval``. A waiting step also re-reads its state
every ``poll_interval`` in case an event was missed.

*Outcomes.* A local step runs its function at most once per recorded attempt: an attempt whose
engine died before recording an outcome is recorded as lost (code ``AttemptLost``) and tried
again. Remote steps are the server's: their retries are its dispatch policy.
"""

from ._context import RunState, WorkflowContext
from ._definition import Workflow, workflow
from ._engine import WorkflowEngine
from ._errors import ATTEMPT_LOST, NON_DETERMINISM, NonDeterminismError, StepFailed, WorkflowFailed
from ._metrics import NO_METRICS, EngineMetrics
from ._retry import RetryPolicy

__all__ = [
    "ATTEMPT_LOST",
    "NON_DETERMINISM",
    "NO_METRICS",
    "EngineMetrics",
    "NonDeterminismError",
    "RetryPolicy",
    "RunState",
    "StepFailed",
    "Workflow",
    "WorkflowContext",
    "WorkflowEngine",
    "WorkflowFailed",
    "workflow",
]
