// `npm test`: runs the compiled tests (node:test) against a real workflowstate server.
// WORKFLOWSTATE_TS_TEST_ADDRESS names one (the pytest wiring sets it); otherwise this starts
// `<repo>/.venv/bin/workflowstate serve` on a free port, with WORKFLOWSTATE_TEST_DATABASE_URL
// (in a schema of its own) when set, else an embedded PostgreSQL in a temporary folder, and
// stops it afterwards.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const repo = join(root, "..", "..");
const READY = "workflowstate listening on ";
// Folders of compiled *.test.js files (Node 20's --test takes no globs).
const TEST_DIRS = ["packages/client/dist/test", "packages/pikku/dist/test", "examples/dist"];

function testFiles() {
  return TEST_DIRS.flatMap((dir) =>
    existsSync(join(root, dir))
      ? readdirSync(join(root, dir))
          .filter((name) => name.endsWith(".test.js"))
          .sort()
          .map((name) => join(dir, name))
      : [],
  );
}

async function startServer() {
  const command = join(repo, ".venv", "bin", "workflowstate");
  if (!existsSync(command)) {
    throw new Error(`${command} is missing: set up the repository's venv first (see README "Set-up")`);
  }
  const args = ["serve", "--listen", "127.0.0.1:0", "--http-listen", "off"];
  let dataDir;
  const url = process.env.WORKFLOWSTATE_TEST_DATABASE_URL;
  if (url) args.push("--database-url", url, "--schema", `ts_${randomBytes(4).toString("hex")}`);
  else {
    dataDir = mkdtempSync(join(tmpdir(), "workflowstate-ts-pg-"));
    args.push("--data-dir", dataDir);
  }
  // Only our flags configure it, not the caller's WORKFLOWSTATE_* variables.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WORKFLOWSTATE_")));
  const server = spawn(command, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  const address = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: server.stdout });
    lines.on("line", (line) => {
      if (line.startsWith(READY)) resolve(line.slice(READY.length).trim());
    });
    server.on("exit", (code) => reject(new Error(`the server exited (${code}) before it was ready`)));
  });
  const stop = async () => {
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.on("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return { address, stop };
}

let server;
let address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
if (!address) {
  server = await startServer();
  address = server.address;
  console.log(`test server on ${address}`);
}
let code = 1;
try {
  const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : testFiles();
  const tests = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, WORKFLOWSTATE_TS_TEST_ADDRESS: address },
  });
  code = await new Promise((resolve) => tests.on("exit", (c) => resolve(c ?? 1)));
} finally {
  await server?.stop();
}
process.exit(code);
