// A token sent without TLS to another machine is warned about once (process.emitWarning, type
// InsecureTokenWarning); nothing is said for TLS, no token, or a server on this machine.
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";
import { isLoopbackAddress, WorkflowStateClient } from "../src/index.js";

let seen: Error[] = [];
const listen = (warning: Error) => {
  if (warning.name === "InsecureTokenWarning") seen.push(warning);
};
beforeEach(() => {
  seen = [];
  process.on("warning", listen);
});
afterEach(() => {
  process.off("warning", listen);
});

/** Builds clients (no call is made, so nothing connects), then lets emitted warnings arrive. */
async function warningsOf(...clients: Array<[string, { token?: string; tls?: boolean }]>): Promise<Error[]> {
  for (const [address, options] of clients) new WorkflowStateClient(address, options).close();
  await new Promise((resolve) => setImmediate(resolve));
  return seen;
}

describe("token over plaintext", () => {
  test("only a token without TLS to another machine is warned about: once per address, naming it, never the token", async () => {
    const warned = await warningsOf(
      ["192.0.2.10:50051", { token: "secret-token" }],
      ["192.0.2.10:50051", { token: "secret-token" }],
      ["192.0.2.11:50051", { token: "t", tls: true }],
      ["192.0.2.12:50051", {}],
      ["127.0.0.1:50051", { token: "t" }],
      ["localhost:50051", { token: "t" }],
      ["[::1]:50051", { token: "t" }],
    );
    assert.equal(warned.length, 1);
    assert.match(warned[0].message, /^the token is sent without TLS to 192\.0\.2\.10:50051, which is not this machine/);
    assert.doesNotMatch(warned[0].message, /secret-token/);
  });

  test("loopback addresses", () => {
    for (const address of ["127.0.0.1:1", "127.5.6.7:1", "localhost:1", "LOCALHOST:1", "[::1]:1", "app.localhost:1"]) {
      assert.ok(isLoopbackAddress(address), address);
    }
    for (const address of ["10.0.0.1:1", "example.com:1", "[2001:db8::1]:1", "128.0.0.1:1", "127.0.0.1.example.com:1"]) {
      assert.ok(!isLoopbackAddress(address), address);
    }
  });
});
