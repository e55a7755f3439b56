// From TypeScript: a run, a step done by a worker, a lease with fencing, the run's events.
// Run it against a server: WORKFLOWSTATE_TARGET=127.0.0.1:50051 node examples/dist/quickstart.js
import { FailedPrecondition, Worker, WorkflowStateClient } from "@workflowstate/client";

const client = new WorkflowStateClient(process.env.WORKFLOWSTATE_TARGET ?? "127.0.0.1:50051");

// A worker runs the steps scheduled for its rpc names (in real life, in its own process).
const worker = new Worker(client, {
  "orders.chargeCard": async (task) => ({ charged: (task.data as { amount: number }).amount }),
});
const working = worker.run();

const run = await client.createRun("checkout", { cart: 42 });
{
  // Only one holder of the run's lock at a time; every write of lease.client carries its
  // fencing token, refused once someone else got the lock. Released at the end of the block.
  await using lease = await client.runLock(run.runId, { ttlMs: 10_000 });
  const step = await lease.client.insertStepState(run.runId, "charge", "orders.chargeCard", { amount: 25 }, {
    retries: 2,
    retryDelayMs: 5_000,
  });
  await lease.client.setStepScheduled(step.stepId); // due for a worker now
  console.log(`holding ${lease.key} with fencing token ${lease.fencingToken}`);
}

for await (const event of client.watchRun(run.runId)) {
  if (event.step?.status === "succeeded") {
    const step = await client.getStepState(run.runId, event.step.stepName);
    console.log(`${step.stepName} succeeded:`, step.result);
    await client.updateRunStatus(run.runId, "completed", { output: step.result });
  }
} // ends with the event that finishes the run

try {
  await client.updateRunStatus(run.runId, "failed"); // a completed run stays completed
} catch (err) {
  if (!(err instanceof FailedPrecondition)) throw err;
  console.log(`refused: ${err.codeName}`);
}
await worker.stop();
await working;
client.close();
