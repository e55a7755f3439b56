// Dispatch policies through the client, against a real server: step options (ms for durations)
// on insert and on scheduling, dispatch defaults set, listed and deleted, a step's options filled
// from them, a Worker seeing start_to_close as its task's timeoutTime, and the exact error
// classes the Python tests expect (tests/test_dispatch_policies.py).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { InvalidArgument, NotFound, type StepTask, Worker } from "../src/index.js";
import { newClient, unique } from "./support/env.js";
import { refusedWith } from "./support/refused.js";

const client = newClient();
after(() => client.close());

function invalid(message: string) {
  return (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, `${String(err)} is not an InvalidArgument`);
    assert.ok(err.message.includes(message), `${err.message} does not say ${message}`);
    assert.equal(err.reason, "INVALID_ARGUMENT", err.message);
    return true;
  };
}

describe("dispatch options and defaults", () => {
  test("a step's options as given, in ms; unset ones are undefined", async () => {
    const run = await client.createRun(unique("opts"), {});
    const step = await client.insertStepState(run.runId, "s", unique("rpc"), {}, {
      retries: 4,
      retryDelayMs: 1500,
      backoffCoefficient: 2,
      maxRetryDelayMs: 60_000,
      jitter: 0.25,
      startToCloseMs: 30_000,
      scheduleToStartMs: 120_000,
      priority: 3,
      concurrencyKey: "customer-1",
    });
    assert.deepEqual(step.options, {
      retries: 4,
      retryDelayMs: 1500,
      backoffCoefficient: 2,
      maxRetryDelayMs: 60_000,
      jitter: 0.25,
      startToCloseMs: 30_000,
      scheduleToStartMs: 120_000,
      priority: 3,
      concurrencyKey: "customer-1",
    });
    assert.equal(step.retries, 4);
    assert.equal(step.retryDelayMs, 1500);
    const bare = await client.insertStepState(run.runId, "bare", unique("rpc"));
    assert.equal(bare.options.startToCloseMs, undefined);
    assert.equal(bare.options.concurrencyKey, undefined);
  });

  test("defaults set, listed, filled into a step that does not set them, its own win, deleted", async () => {
    const rpc = unique("defaulted");
    const stored = await client.setDispatchDefaults(rpc, {
      options: { retries: 3, retryDelayMs: 2000, backoffCoefficient: 2, priority: 7 },
      concurrencyLimit: 2,
      rateLimit: 10,
      ratePeriodMs: 60_000,
    });
    assert.equal(stored.rpcName, rpc);
    assert.deepEqual(
      [stored.options.retries, stored.options.priority, stored.concurrencyLimit, stored.rateLimit, stored.ratePeriodMs],
      [3, 7, 2, 10, 60_000],
    );
    assert.ok(stored.updateTime instanceof Date);
    assert.deepEqual((await client.listDispatchDefaults()).find((d) => d.rpcName === rpc), stored);

    const run = await client.createRun(unique("defaults"), {});
    const plain = await client.insertStepState(run.runId, "plain", rpc);
    assert.deepEqual(
      [plain.options.retries, plain.options.retryDelayMs, plain.options.backoffCoefficient, plain.options.priority, plain.retries],
      [3, 2000, 2, 7, 3],
    );
    const mine = await client.insertStepState(run.runId, "own", rpc, null, { retries: 0, priority: -1, concurrencyKey: "customer-1" });
    assert.deepEqual(
      [mine.options.retries, mine.options.priority, mine.options.backoffCoefficient, mine.options.concurrencyKey],
      [0, -1, 2, "customer-1"],
    );
    // Scheduling may replace some options; the others stay.
    const rescheduled = await client.setStepScheduled(mine.stepId, { options: { priority: 9 } });
    assert.deepEqual([rescheduled.options.priority, rescheduled.options.retries, rescheduled.options.concurrencyKey], [9, 0, "customer-1"]);

    await client.deleteDispatchDefaults(rpc);
    assert.equal((await client.getStepState(run.runId, "plain")).options.priority, 7, "steps keep what they took");
    assert.equal((await client.listDispatchDefaults()).find((d) => d.rpcName === rpc), undefined);
    await assert.rejects(client.deleteDispatchDefaults(rpc), refusedWith(NotFound, "NOT_FOUND"));
  });

  test("bad options and defaults are InvalidArgument naming the field, nothing written", async () => {
    const rpc = unique("bad");
    const run = await client.createRun(unique("bad-options"), {});
    const badOptions: [Record<string, number | string>, string][] = [
      [{ backoffCoefficient: 0.5 }, "options.backoff_coefficient must be at least 1"],
      [{ jitter: 1.5 }, "options.jitter must be from 0 to 1"],
      [{ retryDelayMs: -1000 }, "options.retry_delay must not be negative"],
      [{ maxRetryDelayMs: -1000 }, "options.max_retry_delay must not be negative"],
      [{ startToCloseMs: 0 }, "options.start_to_close must be positive"],
      [{ scheduleToStartMs: -2000 }, "options.schedule_to_start must be positive"],
      [{ retries: -1 }, "options.retries must not be negative"],
      [{ concurrencyKey: "k".repeat(257) }, "options.concurrency_key is 257 characters long"],
    ];
    const ok = await client.insertStepState(run.runId, "ok", rpc);
    for (const [options, message] of badOptions) {
      await assert.rejects(client.insertStepState(run.runId, "s", rpc, null, options), invalid(message));
      await assert.rejects(client.setStepScheduled(ok.stepId, { options }), invalid(message));
    }
    assert.deepEqual((await client.listSteps(run.runId)).map((s) => [s.stepName, s.status]), [["ok", "pending"]]);

    const badDefaults: [Parameters<typeof client.setDispatchDefaults>, string][] = [
      [["", {}], "defaults.rpc_name is required"],
      [[rpc, { concurrencyLimit: 0 }], "defaults.concurrency_limit must be at least 1"],
      [[rpc, { rateLimit: 0, ratePeriodMs: 1000 }], "defaults.rate_limit must be at least 1"],
      [[rpc, { rateLimit: 5, ratePeriodMs: 0 }], "defaults.rate_period must be positive"],
      [[rpc, { rateLimit: 5 }], "defaults.rate_limit and defaults.rate_period go together"],
      [[rpc, { options: { jitter: 2 } }], "defaults.options.jitter must be from 0 to 1"],
      [[rpc, { options: { concurrencyKey: "c" } }], "defaults.options.concurrency_key cannot be a default"],
    ];
    for (const [args, message] of badDefaults) {
      await assert.rejects(client.setDispatchDefaults(...args), invalid(message));
    }
    assert.equal((await client.listDispatchDefaults()).find((d) => d.rpcName === rpc), undefined);
  });

  test("a Worker sees start_to_close as its task's timeoutTime, and the deadline never past it", async () => {
    const rpc = unique("timed");
    const run = await client.createRun(unique("timed"), {});
    const timed = await client.insertStepState(run.runId, "timed", rpc, {}, { startToCloseMs: 10_000 });
    const untimed = await client.insertStepState(run.runId, "untimed", rpc, {});
    await client.setStepScheduled(timed.stepId);
    await client.setStepScheduled(untimed.stepId);
    const tasks = new Map<string, StepTask>();
    let bothSeen!: () => void;
    const seen = new Promise<void>((resolve) => (bothSeen = resolve));
    // A task lease longer than start_to_close: the timeout, not the lease, bounds the deadline.
    const worker = new Worker(
      client,
      {
        [rpc]: (task) => {
          tasks.set(task.stepName, task);
          if (tasks.size === 2) bothSeen();
          return "done";
        },
      },
      { handleSignals: false, taskLeaseMs: 30_000 },
    );
    const running = worker.run();
    await seen;
    assert.equal(await worker.stop(), true);
    await running;

    const task = tasks.get("timed");
    assert.ok(task?.timeoutTime instanceof Date);
    const state = await client.getStepState(run.runId, "timed");
    assert.ok(state.runningTime instanceof Date);
    assert.equal(task.timeoutTime.getTime() - state.runningTime.getTime(), 10_000);
    assert.deepEqual(task.deadline, task.timeoutTime, "the task lease never reaches past the timeout");

    const other = tasks.get("untimed");
    assert.ok(other);
    assert.equal(other.timeoutTime, undefined);
    assert.ok(other.deadline instanceof Date);
  });
});
