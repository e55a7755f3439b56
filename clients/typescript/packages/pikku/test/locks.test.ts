// What the adapter adds beyond Pikku's suites: withRunLock and withStepLock are real leases,
// one holder at a time across processes, and the writes made inside them carry the lease's
// fencing token.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import { FailedPrecondition, WorkflowStateClient } from "@workflowstate/client";
import { WorkflowStateService } from "../src/index.js";

const address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
if (!address) throw new Error("WORKFLOWSTATE_TS_TEST_ADDRESS is not set: run the tests with `npm test`");

const service = new WorkflowStateService(address);
const other = new WorkflowStateService(address); // another engine process, as far as the server knows
const client = new WorkflowStateClient(address);
after(async () => {
  await service.close();
  await other.close();
  client.close();
});

const wire = { type: "test" };
const TAKER = fileURLToPath(new URL("./support/lock-taker.js", import.meta.url));

describe("locks", () => {
  test("withRunLock: a second holder waits until the first one's function returned", async () => {
    const runId = await service.createRun(`locks-${randomUUID().slice(0, 8)}`, {}, false, "h", wire);
    const order: string[] = [];
    let releaseFirst!: () => void;
    const firstHolds = new Promise<void>((resolve) => (releaseFirst = resolve));
    let firstEntered!: () => void;
    const entered = new Promise<void>((resolve) => (firstEntered = resolve));
    const first = service.withRunLock(runId, async () => {
      order.push("first in");
      firstEntered();
      await firstHolds;
      order.push("first out");
    });
    await entered;
    const held = await client.getLease(`run:${runId}`);
    assert.ok(held, "the run's lease is held while the function runs");
    const second = other.withRunLock(runId, async () => {
      order.push("second in");
    });
    // The second waits on the server (as a ticket); let the first finish only now.
    releaseFirst();
    await Promise.all([first, second]);
    assert.deepEqual(order, ["first in", "first out", "second in"]);
    assert.equal(await client.getLease(`run:${runId}`), undefined, "released after the function");
  });

  test("a holder that paused past its lease: its write inside withStepLock is refused, nothing written", async () => {
    const paused = new WorkflowStateService(address!, { lockTtlMs: 1000 });
    const runId = await paused.createRun(`fence-${randomUUID().slice(0, 8)}`, {}, false, "h", wire);
    const step = await paused.insertStepState(runId, "s", "rpc", {});
    const key = `step:${runId}:s`;
    const tokenFile = join(mkdtempSync(join(tmpdir(), "lock-taker-")), "token");
    let taker: ChildProcess | undefined;
    try {
      await assert.rejects(
        paused.withStepLock(runId, "s", async () => {
          const mine = (await client.getLease(key))!.fencingToken;
          taker = spawn(process.execPath, [TAKER, address!, key, tokenFile], { stdio: ["pipe", "inherit", "inherit"] });
          // The whole process stops (a long GC pause, a stopped VM): no keepalive goes out, the
          // lease expires on the server and the other engine, waiting, gets it.
          while (!existsSync(tokenFile) || readFileSync(tokenFile, "utf8") === "") freeze(50);
          assert.ok(BigInt(readFileSync(tokenFile, "utf8")) > mine);
          await paused.setStepRunning(step.stepId); // with the token of the lease this holder lost
        }),
        (err: unknown) => {
          assert.ok(err instanceof FailedPrecondition);
          assert.deepEqual([err.reason, err.metadata.lease_key], ["STALE_FENCE", key]);
          assert.equal(err.metadata.current_token, readFileSync(tokenFile, "utf8"));
          return true;
        },
      );
      assert.equal((await service.getStepState(runId, "s")).status, "pending");
    } finally {
      taker?.stdin?.end();
      if (taker && taker.exitCode === null) await once(taker, "exit");
      await paused.close();
    }
  });
});

/** Blocks the whole process for `ms`, as a pause of the process would. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
