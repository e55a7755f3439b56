// Another engine in a process of its own: waits for the lease on a key, writes its fencing
// token to a file once granted, holds the lease until its stdin closes, then releases it.
//   node lock-taker.js <address> <key> <token-file>
import { writeFileSync } from "node:fs";
import { WorkflowStateClient } from "@workflowstate/client";

const [address, key, tokenFile] = process.argv.slice(2);
const client = new WorkflowStateClient(address);
const lease = await client.lease(key, { ttlMs: 10_000 });
writeFileSync(tokenFile, String(lease.fencingToken));
process.stdin.resume();
await new Promise((resolve) => process.stdin.on("end", resolve));
await lease.release();
client.close();
