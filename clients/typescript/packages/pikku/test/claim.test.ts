// Pikku's claim of a step for execution is the server's ClaimStep: a step that records another
// function is refused with the reason WRONG_RPC, which the adapter turns into Pikku's own error.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, test } from "node:test";
import { WorkflowStepFunctionMismatchError } from "@pikku/core/workflow";
import { WorkflowStateClient } from "@workflowstate/client";
import { WorkflowStateService } from "../src/index.js";

const address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
if (!address) throw new Error("WORKFLOWSTATE_TS_TEST_ADDRESS is not set: run the tests with `npm test`");

const service = new WorkflowStateService(address);
const client = new WorkflowStateClient(address);
after(async () => {
  await service.close();
  client.close();
});

/** The adapter's claim, as Pikku's engine calls it (a protected method of the service). */
const claim = (runId: string, stepName: string, rpcName: string) =>
  (service as unknown as { claimStepForExecution(r: string, s: string, f: string): Promise<unknown> }).claimStepForExecution(
    runId,
    stepName,
    rpcName,
  );

describe("claimStepForExecution", () => {
  test("a step that runs another function is Pikku's WorkflowStepFunctionMismatchError", async () => {
    const run = await client.createRun(`claim-${randomUUID().slice(0, 8)}`, {});
    await client.insertStepState(run.runId, "work", "doWork", {});
    await assert.rejects(claim(run.runId, "work", "otherWork"), WorkflowStepFunctionMismatchError);
    assert.ok(await claim(run.runId, "work", "doWork"), "its own function claims it");
  });
});
