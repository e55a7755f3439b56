// What every test needs: the address of the real server that scripts/test.mjs started (or
// that the pytest wiring passed in) and names no other test uses.
import { randomUUID } from "node:crypto";
import { WorkflowStateClient, type ClientOptions } from "../../src/index.js";

export function testAddress(): string {
  const address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
  if (!address) throw new Error("WORKFLOWSTATE_TS_TEST_ADDRESS is not set: run the tests with `npm test`");
  return address;
}

export function newClient(options: ClientOptions = {}, address = testAddress()): WorkflowStateClient {
  return new WorkflowStateClient(address, { timeoutMs: 20_000, ...options });
}

export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
