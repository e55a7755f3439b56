// watchRun and streamRunEvents resume after the last event received when the connection
// drops: every event arrives once, in order.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { NotFound, type RunEvent } from "../src/index.js";
import { newClient, testAddress, unique } from "./support/env.js";
import { Proxy } from "./support/proxy.js";
import { refusedWith } from "./support/refused.js";

const client = newClient();
after(() => client.close());

const describeEvent = (e: RunEvent) => (e.step ? `${e.step.stepName}#${e.step.attempt}:${e.step.status}` : `run:${e.runStatus}`);

describe("watchRun", () => {
  test("ends with the event that finishes the run", async () => {
    const run = await client.createRun(unique("watch"), {});
    const step = await client.insertStepState(run.runId, "a", "rpc", {});
    await client.setStepResult(step.stepId, 1);
    await client.updateRunStatus(run.runId, "completed");
    const seen = [];
    for await (const event of client.watchRun(run.runId)) seen.push(describeEvent(event));
    assert.deepEqual(seen, ["run:running", "a#1:pending", "a#1:succeeded", "run:completed"]);
  });

  test("resumes after a dropped connection: each event once, in order", async () => {
    const proxy = new Proxy(testAddress());
    const through = newClient({}, await proxy.start());
    try {
      const run = await client.createRun(unique("resume"), {});
      const events = through.watchRun(run.runId);
      const first = await events.next();
      assert.equal(first.done, false);
      const seen: RunEvent[] = [first.value as RunEvent];
      proxy.cut(); // the stream breaks; the client opens a new one after the last event seen
      const step = await client.insertStepState(run.runId, "a", "rpc", {});
      await client.setStepRunning(step.stepId);
      await client.setStepResult(step.stepId, { ok: true });
      await client.updateRunStatus(run.runId, "completed");
      for await (const event of events) seen.push(event);
      assert.ok(proxy.connections >= 2, "the watch reconnected");
      assert.deepEqual(seen.map(describeEvent), [
        "run:running",
        "a#1:pending",
        "a#1:running",
        "a#1:succeeded",
        "run:completed",
      ]);
      const ids = seen.map((e) => e.eventId);
      assert.deepEqual(ids, [...ids].sort((a, b) => (a < b ? -1 : 1)));
      assert.equal(new Set(ids).size, ids.length);
    } finally {
      through.close();
      await proxy.stop();
    }
  });

  test("afterEventId resumes after an event; NotFound for an unknown run", async () => {
    const run = await client.createRun(unique("after"), {});
    await client.updateRunStatus(run.runId, "completed");
    const all = [];
    for await (const event of client.watchRun(run.runId)) all.push(event);
    const rest = [];
    for await (const event of client.watchRun(run.runId, { afterEventId: all[0].eventId })) rest.push(event);
    assert.deepEqual(rest.map((e) => e.eventId), all.slice(1).map((e) => e.eventId));
    const unknown = client.watchRun("00000000-0000-4000-8000-000000000000");
    await assert.rejects(unknown.next(), refusedWith(NotFound, "MISSING", { run_id: "00000000-0000-4000-8000-000000000000" }));
  });
});

describe("streamRunEvents", () => {
  test("streams the events of one workflow's runs until the caller stops", async () => {
    const workflow = unique("stream");
    const controller = new AbortController();
    const events = client.streamRunEvents({ workflow, signal: controller.signal });
    const run = await client.createRun(workflow, {});
    await client.updateRunStatus(run.runId, "completed");
    const seen = [];
    for await (const event of events) {
      seen.push(describeEvent(event));
      if (event.runStatus === "completed") controller.abort();
    }
    assert.deepEqual(seen, ["run:running", "run:completed"]);
  });
});
