// Schedules through the client, against a real server: made, listed, paused, resumed, deleted,
// a run made by one (scheduleId and scheduleTime), and the exact error classes the Python tests
// expect (tests/test_schedules.py).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { AlreadyExists, InvalidArgument, NotFound, StatusCode } from "../src/index.js";
import { newClient, unique } from "./support/env.js";
import { refusedWith } from "./support/refused.js";

const client = newClient();
after(() => client.close());

describe("schedules", () => {
  test("createSchedule keeps cron, timezone and input; list, pause, resume and delete", async () => {
    const id = unique("report");
    const made = await client.createSchedule(id, "reports", { a: [1, 2] }, { cron: "0 9 * * mon-fri", timezone: "Europe/Paris" });
    assert.equal(made.scheduleId, id);
    assert.equal(made.workflow, "reports");
    assert.equal(made.cron, "0 9 * * mon-fri");
    assert.equal(made.intervalMs, undefined);
    assert.equal(made.timezone, "Europe/Paris");
    assert.deepEqual(made.input, { a: [1, 2] });
    assert.equal(made.overlap, "skip");
    assert.equal(made.catchUp, "skip");
    assert.equal(made.paused, false);
    assert.ok(made.nextFireTime instanceof Date);
    assert.equal(made.lastRunId, undefined);
    assert.equal(made.lastRunStatus, undefined);
    assert.equal(made.overlapSkips, 0);

    const listed = [];
    for await (const schedule of client.iterSchedules({ pageSize: 1 })) listed.push(schedule);
    assert.deepEqual(listed.find((s) => s.scheduleId === id), made);

    const paused = await client.pauseSchedule(id);
    assert.equal(paused.paused, true);
    assert.equal(paused.nextFireTime, undefined);
    assert.equal((await client.pauseSchedule(id)).paused, true, "pausing again is a no-op");
    const resumed = await client.resumeSchedule(id);
    assert.equal(resumed.paused, false);
    assert.ok(resumed.nextFireTime instanceof Date);

    await client.deleteSchedule(id);
    await assert.rejects(client.deleteSchedule(id), refusedWith(NotFound, "NOT_FOUND"));
    assert.equal((await client.listSchedules({ pageSize: 1000 })).schedules.find((s) => s.scheduleId === id), undefined);
  });

  test("the same create again returns the schedule; another with the same id is AlreadyExists", async () => {
    const id = unique("same");
    const first = await client.createSchedule(id, "w", { n: 1 }, { intervalMs: 3_600_000, overlap: "allow", catchUp: "latest" });
    assert.equal(first.intervalMs, 3_600_000);
    assert.equal(first.cron, undefined);
    assert.equal(first.overlap, "allow");
    assert.equal(first.catchUp, "latest");
    assert.deepEqual(await client.createSchedule(id, "w", { n: 1 }, { intervalMs: 3_600_000, overlap: "allow", catchUp: "latest" }), first);
    await assert.rejects(
      client.createSchedule(id, "w", { n: 1 }, { intervalMs: 60_000 }),
      refusedWith(AlreadyExists, "ALREADY_EXISTS"),
    );
    await client.deleteSchedule(id);
  });

  test("listSchedules pages by id", async () => {
    const prefix = unique("page");
    const ids = [0, 1, 2, 3, 4].map((n) => `${prefix}-${n}`);
    for (const id of ids) await client.createSchedule(id, "w", null, { cron: "0 0 1 1 *" });
    const seen: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await client.listSchedules({ pageSize: 2, pageToken });
      assert.ok(page.schedules.length <= 2);
      seen.push(...page.schedules.map((s) => s.scheduleId));
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
    assert.deepEqual(seen, [...seen].sort());
    assert.deepEqual(seen.filter((id) => id.startsWith(prefix)), ids);
    for (const id of ids) await client.deleteSchedule(id);
  });

  test("a schedule's run carries its scheduleId and scheduleTime", async () => {
    const id = unique("tick");
    const workflow = unique("ticked");
    const controller = new AbortController();
    const events = client.streamRunEvents({ workflow, signal: controller.signal });
    const first = events.next(); // afterEventId 0: from the first event kept, so no run is missed
    await client.createSchedule(id, workflow, { tick: true }, { intervalMs: 1000 });
    try {
      const event = await first;
      assert.equal(event.done, false);
      const run = await client.getRun(event.value.runId);
      assert.ok(run);
      assert.equal(run.scheduleId, id);
      assert.ok(run.scheduleTime instanceof Date);
      assert.equal(run.scheduleTime.getTime() % 1000, 0, "an interval's occurrences are its multiples since the epoch");
      assert.deepEqual(run.input, { tick: true });
    } finally {
      controller.abort();
      await client.deleteSchedule(id);
    }
    const plain = await client.createRun(unique("plain"), {});
    assert.equal(plain.scheduleId, undefined);
    assert.equal(plain.scheduleTime, undefined);
  });

  test("bad inputs are InvalidArgument naming the field; unknown ids NotFound", async () => {
    const cases: [() => Promise<unknown>, string][] = [
      [() => client.createSchedule("has space", "w", null, { intervalMs: 300_000 }), "schedule_id must be 1 to 128"],
      [() => client.createSchedule("", "w", null, { intervalMs: 300_000 }), "schedule_id is required"],
      [() => client.createSchedule(unique("bad"), "", null, { intervalMs: 300_000 }), "workflow is required"],
      [() => client.createSchedule(unique("bad"), "w", null, { intervalMs: 300_000, cron: "* * * * *" }), "set exactly one of cron and interval"],
      [() => client.createSchedule(unique("bad"), "w", null, {}), "set exactly one of cron and interval"],
      [() => client.createSchedule(unique("bad"), "w", null, { intervalMs: 999 }), "interval must be at least 1 s"],
      [() => client.createSchedule(unique("bad"), "w", null, { cron: "* * * *" }), "cron must have 5 fields"],
      [() => client.createSchedule(unique("bad"), "w", null, { cron: "61 * * * *" }), "cron is not a valid expression: "],
      [() => client.createSchedule(unique("bad"), "w", null, { cron: "* * * * *", timezone: "Mars/Olympus" }), "timezone is not a known IANA timezone"],
      [() => client.createSchedule(unique("bad"), "w", null, { intervalMs: 300_000, timezone: "Europe/Paris" }), "timezone applies to cron only"],
      [() => client.pauseSchedule(""), "schedule_id is required"],
      [() => client.resumeSchedule("a b"), "schedule_id must be 1 to 128"],
      [() => client.listSchedules({ pageSize: 1001 }), "page_size must be 1 to 1000 (0 for 50), got 1001"],
      [() => client.listSchedules({ pageToken: "nonsense" }), "page_token is not a page token of this server's ListSchedules"],
    ];
    for (const [call, message] of cases) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(err instanceof InvalidArgument, `${String(err)}: expected InvalidArgument for ${message}`);
        assert.equal(err.code, StatusCode.INVALID_ARGUMENT);
        assert.equal(err.reason, "INVALID_ARGUMENT", err.message);
        assert.equal(err.message.slice(0, message.length), message);
        return true;
      });
    }
    const unknown = "no-such-schedule";
    for (const call of [() => client.pauseSchedule(unknown), () => client.resumeSchedule(unknown), () => client.deleteSchedule(unknown)]) {
      await assert.rejects(call(), refusedWith(NotFound, "NOT_FOUND"));
    }
  });
});
