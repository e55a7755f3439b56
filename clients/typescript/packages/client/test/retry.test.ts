// The client retries exactly the unary RPCs the contract declares safe to send twice (each RPC's
// idempotency_level option), read from the generated descriptors: no list of its own to drift.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { WorkflowStateService } from "../src/gen/workflowstate/v1/workflow_state_pb.js";
import { RETRYABLE_METHODS } from "../src/retry.js";

test("the client retries the unary RPCs the contract declares safe to repeat, and no other", () => {
  const declared = WorkflowStateService.methods.filter(
    (method) => method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
  );
  assert.ok(declared.length > 0, "no RPC of the contract declares an idempotency level");
  const unary = new Set(declared.filter((method) => method.methodKind === "unary").map((method) => method.name));
  assert.deepEqual([...RETRYABLE_METHODS].sort(), [...unary].sort());
  // A repeat after a lost reply of these would answer otherwise than the first attempt did.
  for (const unsafe of ["InsertStepState", "CreateRetryAttempt", "ClaimStep", "Batch", "DeleteRun", "CancelRuns"]) {
    assert.ok(!RETRYABLE_METHODS.has(unsafe), unsafe);
  }
  // Streams are resumed by their callers, never retried.
  assert.ok(!RETRYABLE_METHODS.has("WatchRun"));
});
