// `npm test`: runs the compiled tests (node:test) against a real workflowstate server.
// WORKFLOWSTATE_TS_TEST_ADDRESS names one (the pytest wiring sets it); otherwise this starts
// `<repo>/.venv/bin/workflowstate serve` on a free port, with WORKFLOWSTATE_TEST_DATABASE_URL
// (in a schema of its own) when set, else an embedded PostgreSQL in a temporary folder, and
// stops it afterwards. It always starts a second server with TLS and tokens, the same way, for
// the tests of those options.
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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

/** Starts `workflowstate serve` with `extraArgs`; resolves once it printed its address. */
async function startServer(extraArgs = []) {
  const command = join(repo, ".venv", "bin", "workflowstate");
  if (!existsSync(command)) {
    throw new Error(`${command} is missing: set up the repository's venv first (see README "Set-up")`);
  }
  const args = ["serve", "--listen", "127.0.0.1:0", "--http-listen", "off", ...extraArgs];
  let dataDir;
  const url = process.env.WORKFLOWSTATE_TEST_DATABASE_URL;
  if (url) args.push("--database-url", url, "--schema", `ts_${randomBytes(4).toString("hex")}`);
  else {
    dataDir = mkdtempSync(join(tmpdir(), "workflowstate-ts-pg-"));
    args.push("--data-dir", dataDir);
  }
  // Only our flags configure it, not the caller's WORKFLOWSTATE_* variables.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WORKFLOWSTATE_")));
  // Its log is shown only when it fails to start or the tests fail (the tail of it).
  const server = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  server.stderr.on("data", (chunk) => {
    log = (log + chunk).slice(-20_000);
  });
  const address = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: server.stdout });
    lines.on("line", (line) => {
      if (line.startsWith(READY)) resolve(line.slice(READY.length).trim());
    });
    server.on("exit", (code) => reject(new Error(`the server exited (${code}) before it was ready:\n${log}`)));
  });
  const stop = async () => {
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.on("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return { address, stop, log: () => log };
}

/**
 * A second server with TLS (a self-signed certificate for 127.0.0.1, made by the tests' own
 * tests/support/certificates.py) and bearer tokens (one `read`, one `write`, one `admin`), for the tests of
 * the client's tls and token options. Its settings go to the tests in WORKFLOWSTATE_TS_TEST_*.
 */
async function startSecureServer() {
  const folder = mkdtempSync(join(tmpdir(), "workflowstate-ts-tls-"));
  execFileSync(join(repo, ".venv", "bin", "python"), [
    "-c",
    "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); " +
      "from support.certificates import self_signed; self_signed(Path(sys.argv[2]))",
    join(repo, "tests"),
    folder,
  ]);
  const tokens = {
    read: randomBytes(32).toString("base64url"),
    write: randomBytes(32).toString("base64url"),
    admin: randomBytes(32).toString("base64url"),
  };
  const lines = Object.entries(tokens).map(([role, token]) => `${createHash("sha256").update(token).digest("hex")} ${role}`);
  writeFileSync(join(folder, "tokens.txt"), lines.join("\n") + "\n");
  const server = await startServer([
    "--tls-cert", join(folder, "cert.pem"),
    "--tls-key", join(folder, "key.pem"),
    "--auth-tokens", join(folder, "tokens.txt"),
  ]);
  return {
    env: {
      WORKFLOWSTATE_TS_TEST_SECURE_ADDRESS: server.address,
      WORKFLOWSTATE_TS_TEST_CA: join(folder, "cert.pem"),
      WORKFLOWSTATE_TS_TEST_READ_TOKEN: tokens.read,
      WORKFLOWSTATE_TS_TEST_WRITE_TOKEN: tokens.write,
      WORKFLOWSTATE_TS_TEST_ADMIN_TOKEN: tokens.admin,
    },
    log: server.log,
    stop: async () => {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

const started = [];
let code = 1;
try {
  let address = process.env.WORKFLOWSTATE_TS_TEST_ADDRESS;
  if (!address) {
    // Schedules of a second, so that their runs come within the tests' time.
    const server = await startServer(["--schedule-min-interval", "1"]);
    started.push(server);
    address = server.address;
    console.log(`test server on ${address}`);
  }
  const secure = await startSecureServer();
  started.push(secure);
  const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : testFiles();
  const tests = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, ...secure.env, WORKFLOWSTATE_TS_TEST_ADDRESS: address },
  });
  code = await new Promise((resolve) => tests.on("exit", (c) => resolve(c ?? 1)));
  if (code !== 0) {
    for (const server of started) console.error(`--- log of the server on ${server.address ?? server.env.WORKFLOWSTATE_TS_TEST_SECURE_ADDRESS}:\n${server.log()}`);
  }
} finally {
  for (const server of started.reverse()) await server.stop();
}
process.exit(code);
