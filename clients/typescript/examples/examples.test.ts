// The README's TypeScript examples run as written, each in its own process, against the
// test server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "node:test";

const run = promisify(execFile);

async function runExample(name: string): Promise<string> {
  const address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
  if (!address) throw new Error("WORKFLOWSTATE_TS_TEST_ADDRESS is not set: run the tests with `npm test`");
  const file = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const { stdout } = await run(process.execPath, [file], {
    env: { ...process.env, WORKFLOWSTATE_TARGET: address },
    timeout: 60_000,
  });
  return stdout;
}

test("examples/quickstart.ts (README: From TypeScript)", async () => {
  const out = await runExample("quickstart");
  assert.match(out, /^holding run:[0-9a-f-]+ with fencing token \d+$/m);
  assert.match(out, /^charge succeeded: \{ charged: 25 \}$/m);
  assert.match(out, /^refused: FAILED_PRECONDITION$/m);
});

test("examples/pikku.ts (README: With Pikku)", async () => {
  const out = await runExample("pikku");
  assert.equal(out, "completed sendWelcome:succeeded\nlatest onboarding run: true\n");
});
