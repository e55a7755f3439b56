// Leases through the client: one holder at a time, the fencing token on every write of
// lease.client, a stale token's write refused with FAILED_PRECONDITION, release by
// `await using` and by release().
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { DeadlineExceeded, FailedPrecondition, InvalidArgument, StatusCode } from "../src/index.js";
import { newClient, unique } from "./support/env.js";
import { refusedWith } from "./support/refused.js";

const client = newClient();
after(() => client.close());

describe("leases", () => {
  test("a held key: its token and holder shown, a second holder waits, release frees it", async () => {
    const key = unique("lease");
    const lease = await client.lease(key, { ttlMs: 10_000, holder: "test-holder" });
    try {
      assert.equal(typeof lease.fencingToken, "bigint");
      assert.ok(lease.fencingToken > 0n);
      assert.equal(lease.lost, false);
      const info = await client.getLease(key);
      assert.equal(info?.holder, "test-holder");
      assert.equal(info?.fencingToken, lease.fencingToken);
      assert.ok(info?.expireTime instanceof Date);
      await assert.rejects(client.lease(key, { waitTimeoutMs: 0 }), (err: unknown) => {
        assert.ok(err instanceof DeadlineExceeded);
        assert.equal(err.code, StatusCode.DEADLINE_EXCEEDED);
        assert.equal(err.reason, "DEADLINE_EXCEEDED", "the server's refusal, not the client's clock");
        return true;
      });
      const page = await client.listLeases({ keyPrefix: key });
      assert.deepEqual(page.leases.map((l) => l.key), [key]);
    } finally {
      await lease.release();
    }
    assert.equal(await client.getLease(key), undefined);
    assert.equal(lease.lost, false);
  });

  test("a waiter gets the key when the holder releases it", async () => {
    const key = unique("wait");
    const first = await client.lease(key);
    const waiting = client.lease(key, { waitTimeoutMs: 30_000 });
    await first.release();
    const second = await waiting;
    try {
      assert.ok(second.fencingToken > first.fencingToken);
    } finally {
      await second.release();
    }
  });

  test("fencing: lease.client's writes pass the token; a stale token's write is refused and writes nothing", async () => {
    const run = await client.createRun(unique("fenced"), {});
    let staleToken: bigint;
    {
      await using lease = await client.runLock(run.runId, { ttlMs: 10_000 });
      staleToken = lease.fencingToken;
      const step = await lease.client.insertStepState(run.runId, "charge", "chargeCard", { amount: 1 });
      await lease.client.setStepRunning(step.stepId);
    }
    // Released by the end of the block: a new holder gets a higher token.
    await using successor = await client.runLock(run.runId, { waitTimeoutMs: 10_000 });
    assert.ok(successor.fencingToken > staleToken);
    const step = await client.getStepState(run.runId, "charge");
    await assert.rejects(client.setStepResult(step.stepId, { late: true }, { fencingToken: staleToken }), (err: unknown) => {
      assert.ok(err instanceof FailedPrecondition);
      assert.equal(err.code, StatusCode.FAILED_PRECONDITION);
      assert.equal(err.reason, "STALE_FENCE");
      assert.equal(err.metadata.fence_token, String(staleToken));
      assert.equal(err.metadata.current_token, String(successor.fencingToken));
      return true;
    });
    assert.equal((await client.getStepState(run.runId, "charge")).status, "running");
    const done = await successor.client.setStepResult(step.stepId, { ok: true });
    assert.equal(done.status, "succeeded");
  });

  test("stepLock uses the step's key; writes may name the key explicitly", async () => {
    const run = await client.createRun(unique("steplock"), {});
    const step = await client.insertStepState(run.runId, "s", "rpc", {});
    const lease = await client.stepLock(run.runId, "s");
    try {
      assert.equal(lease.key, `step:${run.runId}:s`);
      const running = await client.setStepRunning(step.stepId, { fencingToken: lease.fencingToken, leaseKey: lease.key });
      assert.equal(running.status, "running");
    } finally {
      await lease.release();
    }
  });

  test("a holder paused past its expiry learns it lost the lease (lost, lostSignal)", async () => {
    const key = unique("paused");
    const lease = await client.lease(key, { ttlMs: 1000 });
    try {
      const lostEvent = new Promise((resolve) => lease.lostSignal.addEventListener("abort", resolve, { once: true }));
      // The whole process stops (a long GC pause, a stopped VM) until the expiry it was told passed.
      while (Date.now() <= lease.expireTime.getTime()) freeze(20);
      await lostEvent;
      assert.equal(lease.lost, true);
      assert.equal(lease.lostReason, "expired");
    } finally {
      await lease.release();
    }
  });

  test("an empty key or a ttl above the server's maximum is InvalidArgument", async () => {
    await assert.rejects(client.lease(""), refusedWith(InvalidArgument, "INVALID_ARGUMENT", { field: "acquire.key" }));
    await assert.rejects(client.lease(unique("ttl"), { ttlMs: 3_600_000 }), refusedWith(InvalidArgument, "INVALID_ARGUMENT"));
  });
});

/** Blocks the whole process for `ms`, as a pause of the process would. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
