// A worker in a process of its own, for the tests that kill it or stop it with a signal:
//   node worker-child.js <address> <rpcName>
// Its handler prints "started <stepId> <attempt>", then waits for a line "finish" on stdin
// and returns { by: "child", attempt }. It prints "draining" on SIGTERM and "exited" when
// run() returns.
import { createInterface } from "node:readline";
import { Worker, WorkflowStateClient } from "../../src/index.js";

const [address, rpcName] = process.argv.slice(2);
const client = new WorkflowStateClient(address);
const lines = createInterface({ input: process.stdin });
const finish: Array<() => void> = [];
lines.on("line", (line) => {
  if (line === "finish") for (const release of finish.splice(0)) release();
});

const worker = new Worker(
  client,
  {
    [rpcName]: async (task) => {
      console.log(`started ${task.stepId} ${task.attempt}`);
      await new Promise<void>((resolve) => finish.push(resolve));
      return { by: "child", attempt: task.attempt };
    },
  },
  { taskLeaseMs: 3000 },
);
const running = worker.run();
// After the worker's own listener (added by run()), which starts the drain.
process.on("SIGTERM", () => console.log("draining"));
await running;
console.log("exited");
lines.close();
client.close();
