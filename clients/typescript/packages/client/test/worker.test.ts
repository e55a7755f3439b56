// The Worker over StreamStepTasks against a real server: dispatch by rpc name, results and
// failures, a worker killed with SIGKILL whose attempt the server fails and a second worker
// retries and completes, and a graceful drain on SIGTERM.
import assert from "node:assert/strict";
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { once } from "node:events";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { after, describe, test } from "node:test";
import { NonRetryableError, Worker, type WorkflowStateClient } from "../src/index.js";
import { newClient, testAddress, unique } from "./support/env.js";
import { Proxy } from "./support/proxy.js";

const client = newClient();
after(() => client.close());

const CHILD = fileURLToPath(new URL("./support/worker-child.js", import.meta.url));

/** A worker process, and its stdout lines as they come. */
function startChild(rpcName: string): { child: ChildProcessByStdio<Writable, Readable, null>; nextLine: () => Promise<string> } {
  const child = spawn(process.execPath, [CHILD, testAddress(), rpcName], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    nextLine: async () => {
      const next = await lines.next();
      if (next.done) throw new Error("the worker process ended its output");
      return next.value;
    },
  };
}

/** Waits, through watchRun, until step `stepName` reaches `status`. */
async function stepReaches(c: WorkflowStateClient, runId: string, stepName: string, status: string): Promise<void> {
  const controller = new AbortController();
  for await (const event of c.watchRun(runId, { signal: controller.signal })) {
    if (event.step?.stepName === stepName && event.step.status === status) {
      controller.abort();
      return;
    }
  }
  throw new Error(`the run finished before step ${stepName} was ${status}`);
}

describe("Worker", () => {
  test("runs each step by its rpc name: results, retryable and non-retryable failures", async () => {
    const rpc = unique("orders");
    const run = await client.createRun(unique("dispatch"), {});
    const names = ["ok-1", "ok-2", "ok-3"];
    for (const name of names) {
      const step = await client.insertStepState(run.runId, name, `${rpc}.charge`, { amount: name.length });
      await client.setStepScheduled(step.stepId);
    }
    const flaky = await client.insertStepState(run.runId, "flaky", `${rpc}.flaky`, {}, { retries: 1, retryDelayMs: 0 });
    await client.setStepScheduled(flaky.stepId);
    const fatal = await client.insertStepState(run.runId, "fatal", `${rpc}.fatal`, {}, { retries: 3 });
    await client.setStepScheduled(fatal.stepId);
    const worker = new Worker(
      client,
      {
        [`${rpc}.charge`]: (task) => ({ charged: (task.data as { amount: number }).amount }),
        [`${rpc}.flaky`]: (task) => {
          if (task.attempt === 1) throw new Error("first try fails");
          return "second try";
        },
        [`${rpc}.fatal`]: () => {
          throw new NonRetryableError("nothing to charge");
        },
      },
      { maxInFlight: 2, handleSignals: false },
    );
    const running = worker.run();
    await Promise.all([
      ...names.map((name) => stepReaches(client, run.runId, name, "succeeded")),
      stepReaches(client, run.runId, "flaky", "succeeded"),
      stepReaches(client, run.runId, "fatal", "failed"),
    ]);
    assert.equal(await worker.stop(), true);
    await running;
    for (const name of names) {
      assert.deepEqual((await client.getStepState(run.runId, name)).result, { charged: name.length });
    }
    const flakyState = await client.getStepState(run.runId, "flaky");
    assert.equal(flakyState.attemptCount, 2);
    assert.equal(flakyState.result, "second try");
    const fatalState = await client.getStepState(run.runId, "fatal");
    assert.equal(fatalState.attemptCount, 1, "a NonRetryableError fails the step at once");
    assert.equal(fatalState.error?.message, "nothing to charge");
  });

  test("a worker killed with SIGKILL: its attempt fails as lost, a second worker retries and completes it", async () => {
    const rpc = unique("killed");
    const run = await client.createRun(unique("kill"), {});
    const step = await client.insertStepState(run.runId, "charge", rpc, { amount: 5 }, { retries: 2, retryDelayMs: 0 });
    await client.setStepScheduled(step.stepId);
    const { child, nextLine } = startChild(rpc);
    assert.equal(await nextLine(), `started ${step.stepId} 1`);
    const exited = once(child, "exit");
    child.kill("SIGKILL");
    await exited;
    const second = new Worker(client, { [rpc]: (task) => ({ by: "second", attempt: task.attempt }) }, { handleSignals: false });
    const running = second.run();
    await stepReaches(client, run.runId, "charge", "succeeded");
    assert.equal(await second.stop(), true);
    await running;
    const history = await client.getRunHistory(run.runId);
    assert.deepEqual(
      history.map((a) => [a.attempt, a.status]),
      [
        [1, "failed"],
        [2, "succeeded"],
      ],
    );
    assert.match(history[0].error?.message ?? "", /worker lost/);
    assert.deepEqual(history[1].result, { by: "second", attempt: 2 });
  });

  test("SIGTERM drains: the running task finishes and is recorded, then the process exits", async () => {
    const rpc = unique("drain");
    const run = await client.createRun(unique("drain"), {});
    const step = await client.insertStepState(run.runId, "ship", rpc, {});
    await client.setStepScheduled(step.stepId);
    const { child, nextLine } = startChild(rpc);
    assert.equal(await nextLine(), `started ${step.stepId} 1`);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    assert.equal(await nextLine(), "draining");
    // The worker is draining: nothing new, but the running handler may finish and report.
    child.stdin.write("finish\n");
    assert.equal(await nextLine(), "exited");
    const [code] = await exited;
    assert.equal(code, 0);
    const state = await client.getStepState(run.runId, "ship");
    assert.equal(state.status, "succeeded");
    assert.deepEqual(state.result, { by: "child", attempt: 1 });
  });

  test("a connection cut under a running task: the worker reconnects, its late report is refused, the retry completes", async () => {
    const proxy = new Proxy(testAddress());
    const through = newClient({}, await proxy.start());
    const rpc = unique("cut");
    const run = await client.createRun(unique("cut"), {});
    const step = await client.insertStepState(run.runId, "charge", rpc, {}, { retries: 1, retryDelayMs: 0 });
    await client.setStepScheduled(step.stepId);
    let startedFirst!: () => void;
    const first = new Promise<void>((resolve) => (startedFirst = resolve));
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const worker = new Worker(
      through,
      {
        [rpc]: async (task) => {
          if (task.attempt === 1) {
            startedFirst();
            await gate;
          }
          return { attempt: task.attempt };
        },
      },
      { handleSignals: false },
    );
    const running = worker.run();
    try {
      await first;
      proxy.cut(); // the server sees the stream end: attempt 1 fails as lost and is retried
      await stepReaches(client, run.runId, "charge", "failed");
      openGate(); // attempt 1's handler reports now: refused, nothing written
      await stepReaches(client, run.runId, "charge", "succeeded");
      assert.equal(await worker.stop(), true);
      await running;
    } finally {
      through.close();
      await proxy.stop();
    }
    const history = await client.getRunHistory(run.runId);
    assert.deepEqual(
      history.map((a) => [a.attempt, a.status]),
      [
        [1, "failed"],
        [2, "succeeded"],
      ],
    );
    assert.match(history[0].error?.message ?? "", /worker lost/);
    assert.deepEqual(history[1].result, { attempt: 2 });
    assert.ok(proxy.connections >= 2, "the worker subscribed again");
  });
});
