// Generates the TypeScript stubs of proto/ into packages/client/src/gen with buf and
// protoc-gen-es (both from node_modules). With --check it generates into a temporary
// folder instead and fails when the committed stubs differ: the drift check.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const repo = join(root, "..", "..");
const committed = join(root, "packages", "client", "src", "gen");
const check = process.argv.includes("--check");

function generate(outDir) {
  const template = readFileSync(join(root, "buf.gen.yaml"), "utf8").replace(
    "out: packages/client/src/gen",
    `out: ${JSON.stringify(outDir)}`,
  );
  execFileSync(join(root, "node_modules", ".bin", "buf"), ["generate", repo, "--template", template], {
    cwd: root,
    stdio: "inherit",
    // protoc-gen-es is found on PATH.
    env: { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH}` },
  });
}

function files(dir) {
  const out = new Map();
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, "utf8"));
    }
  };
  try {
    walk(dir);
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  return out;
}

if (!check) {
  rmSync(committed, { recursive: true, force: true });
  generate(committed);
  console.log(`generated ${[...files(committed).keys()].join(", ")}`);
} else {
  const tmp = mkdtempSync(join(tmpdir(), "workflowstate-gen-"));
  try {
    generate(tmp);
    const want = files(tmp);
    const have = files(committed);
    const drift = [...new Set([...want.keys(), ...have.keys()])].filter((k) => want.get(k) !== have.get(k));
    if (drift.length > 0) {
      console.error(`generated stubs are out of date: ${drift.join(", ")}; run npm run generate`);
      process.exit(1);
    }
    console.log("generated stubs are up to date");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
