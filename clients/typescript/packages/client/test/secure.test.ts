// The client's tls and token options against a real server started with --tls-cert and
// --auth-tokens (scripts/test.mjs starts it): the token goes with every call and stream, the
// role decides, and TLS checks the server's certificate.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import {
  PermissionDenied,
  StatusCode,
  type TlsOptions,
  Unauthenticated,
  Unavailable,
  WorkflowStateClient,
} from "../src/index.js";
import { unique } from "./support/env.js";
import { refusedWith } from "./support/refused.js";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\``);
  return value;
}

const address = setting("WORKFLOWSTATE_TS_TEST_SECURE_ADDRESS");
const ca = readFileSync(setting("WORKFLOWSTATE_TS_TEST_CA"));
const opened: WorkflowStateClient[] = [];
after(() => opened.forEach((c) => c.close()));

function client(token: string | undefined, tls: TlsOptions = { ca }) {
  const c = new WorkflowStateClient(address, { token, tls, timeoutMs: 20_000, retry: false });
  opened.push(c);
  return c;
}

describe("tls and token", () => {
  test("a write token over TLS: calls, a lease stream and a watch stream carry it", async () => {
    const writer = client(setting("WORKFLOWSTATE_TS_TEST_WRITE_TOKEN"));
    const run = await writer.createRun(unique("secure"), { x: 1 });
    {
      await using lease = await writer.runLock(run.runId);
      await lease.client.updateRunStatus(run.runId, "completed", { output: 1 });
    }
    const statuses = [];
    for await (const event of writer.watchRun(run.runId)) statuses.push(event.runStatus);
    assert.deepEqual(statuses, ["running", "completed"]);
  });

  test("a read token reads and may not write: PermissionDenied", async () => {
    const reader = client(setting("WORKFLOWSTATE_TS_TEST_READ_TOKEN"));
    assert.equal(await reader.getRun("00000000-0000-4000-8000-000000000000"), undefined);
    await assert.rejects(reader.createRun(unique("denied"), {}), (err: unknown) => {
      assert.ok(err instanceof PermissionDenied);
      assert.equal(err.code, StatusCode.PERMISSION_DENIED);
      assert.deepEqual([err.reason, err.metadata.role, err.metadata.required_role], ["ROLE_NOT_PERMITTED", "read", "write"]);
      return true;
    });
  });

  test("dispatch defaults: a write token may list them, only an admin token set or delete them", async () => {
    const writer = client(setting("WORKFLOWSTATE_TS_TEST_WRITE_TOKEN"));
    const admin = client(setting("WORKFLOWSTATE_TS_TEST_ADMIN_TOKEN"));
    const rpc = unique("admin-only");
    await assert.rejects(writer.setDispatchDefaults(rpc, { concurrencyLimit: 1 }), refusedWith(PermissionDenied, "ROLE_NOT_PERMITTED", { required_role: "admin" }));
    assert.equal((await writer.listDispatchDefaults()).find((d) => d.rpcName === rpc), undefined, "nothing was written");
    await admin.setDispatchDefaults(rpc, { concurrencyLimit: 1 });
    assert.equal((await writer.listDispatchDefaults()).find((d) => d.rpcName === rpc)?.concurrencyLimit, 1);
    await assert.rejects(writer.deleteDispatchDefaults(rpc), refusedWith(PermissionDenied, "ROLE_NOT_PERMITTED", { required_role: "admin" }));
    await admin.deleteDispatchDefaults(rpc);
  });

  test("no token, or an unknown one: Unauthenticated", async () => {
    await assert.rejects(client(undefined).listWorkflows(), refusedWith(Unauthenticated, "UNAUTHENTICATED"));
    await assert.rejects(client("not-a-token").listWorkflows(), refusedWith(Unauthenticated, "UNAUTHENTICATED"));
  });

  test("TLS checks the server's certificate: without its CA the call is Unavailable", async () => {
    await assert.rejects(client(setting("WORKFLOWSTATE_TS_TEST_WRITE_TOKEN"), true).listWorkflows(), Unavailable);
  });
});
