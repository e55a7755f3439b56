// The engine-state RPCs through the client: run metadata, suspended runs and steps,
// step links, ClaimStep, run state variables, workflow versions, and the sweeps' reads, with
// the exact error codes of the Python tests.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { FailedPrecondition, InvalidArgument, NotFound, StatusCode } from "../src/index.js";
import { newClient, unique } from "./support/env.js";
import { refusedWith } from "./support/refused.js";

const client = newClient();
after(() => client.close());

const MISSING = "00000000-0000-4000-8000-000000000000";

describe("engine state", () => {
  test("createRun keeps the engine's fields: inline, graph hash, metadata, planned steps", async () => {
    const run = await client.createRun(unique("engine"), { a: 1 }, {
      inline: true,
      graphHash: "hash-1",
      metadata: { type: "http", pikkuUserId: "u1" },
      deterministic: true,
      plannedSteps: [{ stepName: "first", displayName: "First" }],
    });
    const fetched = await client.getRun(run.runId);
    assert.ok(fetched);
    assert.equal(fetched.inline, true);
    assert.equal(fetched.graphHash, "hash-1");
    assert.deepEqual(fetched.metadata, { type: "http", pikkuUserId: "u1" });
    assert.equal(fetched.deterministic, true);
    assert.deepEqual(fetched.plannedSteps, [{ stepName: "first", displayName: "First" }]);
  });

  test("a run suspends and resumes; a step suspends and resumes with the set calls", async () => {
    const run = await client.createRun(unique("suspend"), {});
    const suspended = await client.updateRunStatus(run.runId, "suspended", { error: { message: "waiting", code: "WAIT" } });
    assert.equal(suspended.status, "suspended");
    assert.equal((await client.updateRunStatus(run.runId, "running")).status, "running");
    const step = await client.insertStepState(run.runId, "approve", "approve", {});
    assert.equal((await client.setStepSuspended(step.stepId)).status, "suspended");
    assert.equal((await client.setStepRunning(step.stepId)).status, "running");
    await client.setStepResult(step.stepId, true);
    await assert.rejects(client.setStepSuspended(step.stepId), refusedWith(FailedPrecondition, "ILLEGAL_TRANSITION", { prior_status: "SUCCEEDED" }));
    await assert.rejects(client.setStepSuspended("bad"), refusedWith(InvalidArgument, "INVALID_ARGUMENT", { field: "step_id" }));
    await assert.rejects(client.setStepSuspended(MISSING), refusedWith(NotFound, "MISSING", { step_id: MISSING }));
  });

  test("setStepChildRun and setStepBranch: the same again is a no-op, another is refused", async () => {
    const parent = await client.createRun(unique("parent"), {});
    const child = await client.createRun(unique("child"), {});
    const other = await client.createRun(unique("child"), {});
    const step = await client.insertStepState(parent.runId, "sub", "sub", {});
    assert.equal((await client.setStepChildRun(step.stepId, child.runId)).childRunId, child.runId);
    await client.setStepChildRun(step.stepId, child.runId);
    await assert.rejects(client.setStepChildRun(step.stepId, other.runId), refusedWith(FailedPrecondition, "DIFFERENT_PAYLOAD", { prior_link: child.runId }));
    await assert.rejects(client.setStepChildRun(step.stepId, MISSING), refusedWith(NotFound, "MISSING_CHILD", { child_run_id: MISSING }));
    await client.setStepResult(step.stepId, {});
    assert.equal((await client.setStepBranch(step.stepId, "left")).branchKey, "left");
    await client.setStepBranch(step.stepId, "left");
    await assert.rejects(client.setStepBranch(step.stepId, "right"), refusedWith(FailedPrecondition, "DIFFERENT_PAYLOAD", { prior_link: "left" }));
    await assert.rejects(client.setStepBranch(step.stepId, ""), refusedWith(InvalidArgument, "INVALID_ARGUMENT", { field: "branch_key" }));
  });

  test("a step without a function: rpcName null is stored empty; any caller may claim it, a step with one only its own", async () => {
    const run = await client.createRun(unique("inline"), {});
    const step = await client.insertStepState(run.runId, "inline", null, {}, { fromStepName: "start" });
    assert.equal(step.rpcName, "");
    assert.equal(step.fromStepName, "start");
    // As Pikku's own claim: only a step that records a function is checked against the caller's.
    const claim = await client.claimStep(run.runId, "inline", "someRpc");
    assert.equal(claim.claimed, true);
    await client.insertStepState(run.runId, "with-function", "doWork", {});
    await assert.rejects(client.claimStep(run.runId, "with-function", null), refusedWith(FailedPrecondition, "WRONG_RPC", { prior_rpc_name: "doWork" }));
  });

  test("claimStep: one caller gets it; a running step is not claimed; another rpc_name is refused", async () => {
    const run = await client.createRun(unique("claim"), {});
    await client.insertStepState(run.runId, "work", "doWork", {});
    const first = await client.claimStep(run.runId, "work", "doWork");
    assert.equal(first.claimed, true);
    assert.equal(first.step.status, "running");
    const second = await client.claimStep(run.runId, "work", "doWork");
    assert.equal(second.claimed, false);
    assert.equal(second.step.status, "running");
    await assert.rejects(client.claimStep(run.runId, "work", "otherWork"), (err: unknown) => {
      assert.ok(err instanceof FailedPrecondition);
      assert.equal(err.reason, "WRONG_RPC");
      assert.deepEqual([err.metadata.rpc_name, err.metadata.prior_rpc_name], ["otherWork", "doWork"]);
      return true;
    });
    await assert.rejects(client.claimStep(run.runId, "absent", "doWork"), refusedWith(NotFound, "MISSING", { step_name: "absent" }));
    // A failed step is claimed as its next attempt.
    await client.setStepError(first.step.stepId, new Error("boom"));
    const retry = await client.claimStep(run.runId, "work", "doWork");
    assert.equal(retry.claimed, true);
    assert.equal(retry.step.attemptCount, 2);
  });

  test("run state variables: set one key at a time, read them all", async () => {
    const run = await client.createRun(unique("vars"), {});
    assert.deepEqual(await client.getRunState(run.runId), {});
    await client.updateRunState(run.runId, "counter", 5);
    await client.updateRunState(run.runId, "a.b", { nested: [1, 2] });
    await client.updateRunState(run.runId, "counter", 6);
    assert.deepEqual(await client.getRunState(run.runId), { counter: 6, "a.b": { nested: [1, 2] } });
    await assert.rejects(client.updateRunState(run.runId, "", 1), refusedWith(InvalidArgument, "INVALID_ARGUMENT", { field: "name" }));
    await assert.rejects(client.getRunState(MISSING), refusedWith(NotFound, "MISSING", { run_id: MISSING }));
  });

  test("workflow versions: upsert keeps the first, status moves, a missing one is NotFound", async () => {
    const workflow = unique("versions");
    const created = await client.upsertWorkflowVersion(workflow, "h1", { nodes: ["a"] }, { source: "dsl" });
    assert.equal(created.created, true);
    assert.equal(created.version.status, "active");
    const again = await client.upsertWorkflowVersion(workflow, "h1", { nodes: ["changed"] }, { source: "dsl" });
    assert.equal(again.created, false);
    assert.deepEqual(again.version.graph, { nodes: ["a"] });
    const declined = await client.updateWorkflowVersionStatus(workflow, "h1", "declined");
    assert.equal(declined.status, "declined");
    assert.equal((await client.getWorkflowVersion(workflow, "h1"))?.status, "declined");
    await assert.rejects(
      client.updateWorkflowVersionStatus(workflow, "h1", "draft"),
      refusedWith(FailedPrecondition, "ILLEGAL_TRANSITION", { workflow, graph_hash: "h1", prior_status: "DECLINED", target_status: "DRAFT" }),
    );
    await assert.rejects(client.getWorkflowVersion(workflow, "missing"), refusedWith(NotFound, "MISSING", { workflow, graph_hash: "missing" }));
    await assert.rejects(
      client.updateWorkflowVersionStatus(workflow, "missing", "active"),
      refusedWith(NotFound, "MISSING", { workflow, graph_hash: "missing" }),
    );
    await assert.rejects(client.upsertWorkflowVersion("", "h", null), refusedWith(InvalidArgument, "INVALID_ARGUMENT", { field: "workflow" }));
  });

  test("the sweeps' reads: stalled runs and undispatched steps; a bound out of range is InvalidArgument", async () => {
    const run = await client.createRun(unique("sweep"), {});
    const step = await client.insertStepState(run.runId, "waiting", "rpc", {});
    const later = new Date(Date.now() + 60_000);
    assert.ok((await client.listStalledRuns(later, { maxRuns: 1000 })).includes(run.runId));
    const undispatched = await client.listUndispatchedSteps(later, { maxSteps: 1000 });
    assert.ok(undispatched.some((s) => s.stepId === step.stepId && s.runId === run.runId));
    await assert.rejects(client.listStalledRuns(later, { maxRuns: 0 }), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.equal(err.code, StatusCode.INVALID_ARGUMENT);
      assert.equal(err.reason, "INVALID_ARGUMENT"); // its metadata names no field: the message says max_runs
      return true;
    });
    await assert.rejects(client.listUndispatchedSteps(later, { maxSteps: 1001 }), refusedWith(InvalidArgument, "INVALID_ARGUMENT"));
  });
});
