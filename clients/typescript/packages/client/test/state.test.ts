// The state RPCs through the client, against a real server: every unary call, JSON as values,
// times as Date, and the exact error classes and codes the Python tests expect.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  AlreadyExists,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  StatusCode,
  WorkflowStateError,
} from "../src/index.js";
import { newClient, unique } from "./support/env.js";
import { refusedWith } from "./support/refused.js";

const client = newClient();
after(() => client.close());

const MISSING = "00000000-0000-4000-8000-000000000000";

describe("runs", () => {
  test("createRun and getRun keep JSON values and times", async () => {
    const workflow = unique("checkout");
    const run = await client.createRun(workflow, { cart: 42, items: ["a", null] });
    assert.equal(run.workflow, workflow);
    assert.equal(run.status, "running");
    assert.deepEqual(run.input, { cart: 42, items: ["a", null] });
    assert.ok(run.createTime instanceof Date);
    const fetched = await client.getRun(run.runId);
    assert.ok(fetched);
    assert.deepEqual(fetched.input, run.input);
  });

  test("createRun with the same requestId returns the same run", async () => {
    const requestId = unique("req");
    const first = await client.createRun(unique("idem"), 1, { requestId });
    const again = await client.createRun(first.workflow, 1, { requestId });
    assert.equal(again.runId, first.runId);
  });

  test("getRun: undefined for a missing run, InvalidArgument for a malformed id", async () => {
    assert.equal(await client.getRun(MISSING), undefined);
    await assert.rejects(client.getRun("not-a-uuid"), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.ok(err instanceof WorkflowStateError);
      assert.equal(err.code, StatusCode.INVALID_ARGUMENT);
      assert.equal(err.codeName, "INVALID_ARGUMENT");
      assert.match(err.message, /run_id/);
      assert.equal(err.reason, "INVALID_ARGUMENT");
      assert.deepEqual(err.metadata, { field: "run_id" });
      return true;
    });
  });

  test("updateRunStatus stores the output; a finished run refuses another status", async () => {
    const run = await client.createRun(unique("finish"), {});
    const done = await client.updateRunStatus(run.runId, "completed", { output: { ok: true } });
    assert.equal(done.status, "completed");
    assert.deepEqual(done.output, { ok: true });
    // Repeating the status with the same output is a no-op.
    await client.updateRunStatus(run.runId, "completed", { output: { ok: true } });
    await assert.rejects(client.updateRunStatus(run.runId, "failed"), (err: unknown) => {
      assert.ok(err instanceof FailedPrecondition);
      assert.equal(err.reason, "FINISHED_RUN");
      assert.equal(err.metadata.prior_status, "COMPLETED");
      return true;
    });
  });

  test("updateRunStatus failed stores an Error's message, stack and name", async () => {
    const run = await client.createRun(unique("fail"), {});
    const failed = await client.updateRunStatus(run.runId, "failed", { error: new TypeError("bad input") });
    assert.equal(failed.error?.message, "bad input");
    assert.equal(failed.error?.code, "TypeError");
    assert.match(failed.error?.stack ?? "", /TypeError: bad input/);
  });

  test("unknown run: NotFound for its history and its steps", async () => {
    await assert.rejects(client.getRunHistory(MISSING), refusedWith(NotFound, "MISSING", { run_id: MISSING }));
    await assert.rejects(client.listSteps(MISSING), refusedWith(NotFound, "MISSING", { run_id: MISSING }));
    await assert.rejects(client.insertStepState(MISSING, "s", "rpc", {}), refusedWith(NotFound, "MISSING", { run_id: MISSING }));
  });

  test("listRuns pages, iterRuns walks every page, listWorkflows counts", async () => {
    const workflow = unique("paged");
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await client.createRun(workflow, { i })).runId);
    const first = await client.listRuns({ workflow, pageSize: 2, oldestFirst: true });
    assert.deepEqual(first.runs.map((r) => r.runId), ids.slice(0, 2));
    assert.equal(first.runs[0].input, undefined); // no payloads without full
    assert.ok(first.nextPageToken);
    const second = await client.listRuns({ workflow, pageSize: 2, oldestFirst: true, pageToken: first.nextPageToken });
    assert.deepEqual(second.runs.map((r) => r.runId), ids.slice(2));
    assert.equal(second.nextPageToken, undefined);
    const all = [];
    for await (const run of client.iterRuns({ workflow, pageSize: 1, full: true })) all.push(run);
    assert.deepEqual(all.map((r) => r.runId), [...ids].reverse());
    assert.deepEqual(all[0].input, { i: 2 });
    const summary = (await client.listWorkflows()).find((w) => w.workflow === workflow);
    assert.equal(summary?.runCounts.running, 3);
    assert.equal(summary?.runCounts.completed ?? 0, 0);
    await assert.rejects(client.listRuns({ pageSize: 5000 }), refusedWith(InvalidArgument, "INVALID_ARGUMENT"));
  });

  test("cancelRun, cancelRuns, deleteRun, deleteRuns", async () => {
    const workflow = unique("manage");
    const a = await client.createRun(workflow, {});
    const b = await client.createRun(workflow, {});
    const cancelled = await client.cancelRun(a.runId, { reason: "asked" });
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.error?.code, "CANCELLED");
    assert.deepEqual(await client.cancelRuns({ workflow }), [b.runId]);
    await client.deleteRun(a.runId);
    await assert.rejects(client.deleteRun(a.runId), refusedWith(NotFound, "MISSING", { run_id: a.runId }));
    assert.deepEqual(await client.deleteRuns({ workflow }), [b.runId]);
    const running = await client.createRun(workflow, {});
    await assert.rejects(client.deleteRun(running.runId), FailedPrecondition);
    await client.deleteRun(running.runId, { force: true });
    assert.equal(await client.getRun(running.runId), undefined);
  });

  test("retention policies and workers", async () => {
    const workflow = unique("kept");
    const policy = await client.setRetentionPolicy({ workflow, statuses: ["completed"], keepMs: 86_400_000 });
    assert.equal(policy.workflow, workflow);
    assert.equal(policy.keepMs, 86_400_000);
    assert.deepEqual(policy.statuses, ["completed"]);
    assert.ok((await client.listRetentionPolicies()).some((p) => p.policyId === policy.policyId));
    await client.deleteRetentionPolicy(policy.policyId);
    await assert.rejects(client.deleteRetentionPolicy(policy.policyId), NotFound);
    await assert.rejects(client.setRetentionPolicy({ statuses: ["running"], keepMs: 1000 }), InvalidArgument);
    assert.ok(Array.isArray(await client.listWorkers()));
  });
});

describe("steps", () => {
  test("the life of a step, its history and the transition table", async () => {
    const run = await client.createRun(unique("steps"), {});
    const step = await client.insertStepState(run.runId, "charge", "chargeCard", { amount: 10 }, {
      retries: 2,
      retryDelayMs: 5000,
    });
    assert.equal(step.status, "pending");
    assert.equal(step.attemptCount, 1);
    assert.equal(step.retries, 2);
    assert.equal(step.retryDelayMs, 5000);
    assert.deepEqual(step.data, { amount: 10 });
    await assert.rejects(client.insertStepState(run.runId, "charge", "chargeCard", {}), (err: unknown) => {
      assert.ok(err instanceof AlreadyExists);
      assert.equal(err.code, StatusCode.ALREADY_EXISTS);
      return true;
    });
    const scheduled = await client.setStepScheduled(step.stepId, { delayMs: 60_000 });
    assert.equal(scheduled.status, "scheduled");
    assert.ok(scheduled.notBefore instanceof Date);
    const running = await client.setStepRunning(step.stepId);
    assert.equal(running.status, "running");
    assert.ok(running.runningTime instanceof Date);
    const failed = await client.setStepError(step.stepId, new Error("gateway timed out"));
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.message, "gateway timed out");
    const retry = await client.createRetryAttempt(step.stepId, "running");
    assert.equal(retry.attemptCount, 2);
    assert.equal(retry.error, undefined);
    const done = await client.setStepResult(step.stepId, { charged: true });
    assert.deepEqual(done.result, { charged: true });
    await assert.rejects(client.setStepRunning(step.stepId), (err: unknown) => {
      assert.ok(err instanceof FailedPrecondition);
      assert.equal(err.code, StatusCode.FAILED_PRECONDITION);
      assert.match(err.message, /SUCCEEDED/i);
      return true;
    });
    // The same result again is a no-op; another is refused.
    await client.setStepResult(step.stepId, { charged: true });
    await assert.rejects(client.setStepResult(step.stepId, { charged: false }), FailedPrecondition);
    const fetched = await client.getStepState(run.runId, "charge");
    assert.equal(fetched.stepId, step.stepId);
    assert.equal(fetched.status, "succeeded");
    const history = await client.getRunHistory(run.runId);
    assert.deepEqual(
      history.map((a) => [a.stepName, a.attempt, a.status]),
      [
        ["charge", 1, "failed"],
        ["charge", 2, "succeeded"],
      ],
    );
    assert.deepEqual(history[1].result, { charged: true });
    assert.equal((await client.listSteps(run.runId)).length, 1);
  });

  test("exact codes: malformed step id, unknown step, missing step name", async () => {
    const run = await client.createRun(unique("codes"), {});
    await assert.rejects(client.setStepRunning("nope"), InvalidArgument);
    await assert.rejects(client.setStepRunning(MISSING), NotFound);
    await assert.rejects(client.getStepState(run.runId, "absent"), refusedWith(NotFound, "MISSING", { run_id: run.runId, step_name: "absent" }));
    await assert.rejects(client.insertStepState(run.runId, "", "rpc", {}), InvalidArgument);
    await client.updateRunStatus(run.runId, "completed");
    await assert.rejects(client.insertStepState(run.runId, "late", "rpc", {}), FailedPrecondition);
  });

  test("a per-call deadline and an AbortSignal", async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.getRun(MISSING, { signal: controller.signal }), (err: unknown) => {
      assert.ok(err instanceof WorkflowStateError);
      assert.equal(err.code, StatusCode.CANCELLED);
      return true;
    });
    const run = await client.createRun(unique("deadline"), {});
    assert.ok(await client.getRun(run.runId, { timeoutMs: 10_000 }));
  });
});
