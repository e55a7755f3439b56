// Between the wire's messages and the client's types: JSON text <-> JS values, Timestamp <->
// Date, Duration <-> milliseconds, enums <-> lower-case strings.
import { type Duration, type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import * as pb from "./gen/workflowstate/v1/index.js";
import type * as t from "./types.js";

// --- JSON ----------------------------------------------------------------------

/** A JS value as JSON text; undefined is sent as null. TypeError for what JSON cannot hold. */
export function encodeJson(value: unknown): string {
  const text = JSON.stringify(value === undefined ? null : value);
  if (text === undefined) throw new TypeError(`not a JSON value: ${String(value)}`);
  return text;
}

export function decodeJson(text: string | undefined): unknown {
  return text === undefined || text === "" ? undefined : JSON.parse(text);
}

// --- times -----------------------------------------------------------------------

export function dateOf(ts: Timestamp | undefined): Date | undefined {
  return ts === undefined ? undefined : timestampDate(ts);
}

/** For fields the server always sets. */
function date(ts: Timestamp | undefined): Date {
  return ts === undefined ? new Date(0) : timestampDate(ts);
}

export function timestampOf(value: Date | undefined): Timestamp | undefined {
  return value === undefined ? undefined : timestampFromDate(value);
}

export function msOf(d: Duration | undefined): number | undefined {
  return d === undefined ? undefined : Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
}

export function durationOf(ms: number | undefined): Duration | undefined {
  if (ms === undefined) return undefined;
  if (!Number.isFinite(ms)) throw new RangeError(`a duration must be a finite number of milliseconds, got ${ms}`);
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return create(DurationSchema, { seconds: BigInt(seconds), nanos });
}

// --- enums -----------------------------------------------------------------------

const RUN_STATUSES: Record<t.RunStatus, pb.RunStatus> = {
  running: pb.RunStatus.RUNNING,
  completed: pb.RunStatus.COMPLETED,
  failed: pb.RunStatus.FAILED,
  cancelled: pb.RunStatus.CANCELLED,
  suspended: pb.RunStatus.SUSPENDED,
};
const STEP_STATUSES: Record<t.StepStatus, pb.StepStatus> = {
  pending: pb.StepStatus.PENDING,
  scheduled: pb.StepStatus.SCHEDULED,
  running: pb.StepStatus.RUNNING,
  succeeded: pb.StepStatus.SUCCEEDED,
  failed: pb.StepStatus.FAILED,
  suspended: pb.StepStatus.SUSPENDED,
};
const VERSION_STATUSES: Record<t.WorkflowVersionStatus, pb.WorkflowVersionStatus> = {
  draft: pb.WorkflowVersionStatus.DRAFT,
  active: pb.WorkflowVersionStatus.ACTIVE,
  declined: pb.WorkflowVersionStatus.DECLINED,
};

function reverse<K extends string>(map: Record<K, number>): Map<number, K> {
  return new Map(Object.entries(map).map(([k, v]) => [v as number, k as K]));
}
const RUN_STATUS_NAMES = reverse(RUN_STATUSES);
const STEP_STATUS_NAMES = reverse(STEP_STATUSES);
const VERSION_STATUS_NAMES = reverse(VERSION_STATUSES);

function toEnum<K extends string>(map: Record<K, number>, value: K): number {
  const number = map[value];
  // An unknown status is sent as UNSPECIFIED, which the server refuses with INVALID_ARGUMENT
  // naming the field: one place decides what is valid.
  return number === undefined ? 0 : number;
}

export const runStatusToProto = (s: t.RunStatus): pb.RunStatus => toEnum(RUN_STATUSES, s);
export const stepStatusToProto = (s: t.StepStatus): pb.StepStatus => toEnum(STEP_STATUSES, s);
export const versionStatusToProto = (s: t.WorkflowVersionStatus): pb.WorkflowVersionStatus =>
  toEnum(VERSION_STATUSES, s);
export const runStatusOf = (s: pb.RunStatus): t.RunStatus => RUN_STATUS_NAMES.get(s) ?? ("unspecified" as t.RunStatus);
export const stepStatusOf = (s: pb.StepStatus): t.StepStatus =>
  STEP_STATUS_NAMES.get(s) ?? ("unspecified" as t.StepStatus);
export const versionStatusOf = (s: pb.WorkflowVersionStatus): t.WorkflowVersionStatus =>
  VERSION_STATUS_NAMES.get(s) ?? ("unspecified" as t.WorkflowVersionStatus);

export function leaseLostReasonOf(r: pb.LeaseLostReason): t.LeaseLostReason {
  switch (r) {
    case pb.LeaseLostReason.EXPIRED:
      return "expired";
    case pb.LeaseLostReason.TAKEN_OVER:
      return "taken_over";
    case pb.LeaseLostReason.SERVER_SHUTDOWN:
      return "server_shutdown";
    default:
      return "unspecified";
  }
}

// --- failures ----------------------------------------------------------------------

export type FailureInput = Error | { message: string; stack?: string; code?: string };

/** An Error is stored with its message, stack and class name (as code), as the Python client does. */
export function failureToProto(error: FailureInput): pb.Failure {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return create(pb.FailureSchema, {
      message: error.message,
      stack: error.stack ?? "",
      code: typeof code === "string" && code !== "" ? code : error.name,
    });
  }
  return create(pb.FailureSchema, { message: error.message, stack: error.stack ?? "", code: error.code ?? "" });
}

export function failureOf(f: pb.Failure | undefined): t.Failure | undefined {
  return f === undefined ? undefined : { message: f.message, stack: f.stack, code: f.code };
}

// --- records -----------------------------------------------------------------------

export function runOf(r: pb.Run | undefined): t.Run {
  if (r === undefined) throw new TypeError("the server's answer has no run");
  return {
    runId: r.runId,
    workflow: r.workflow,
    status: runStatusOf(r.status),
    input: decodeJson(r.inputJson),
    output: decodeJson(r.outputJson),
    error: failureOf(r.error),
    createTime: date(r.createTime),
    updateTime: date(r.updateTime),
    inline: r.inline,
    graphHash: r.graphHash,
    metadata: decodeJson(r.metadataJson),
    deterministic: r.deterministic,
    plannedSteps: r.plannedSteps.map((p) => ({ stepName: p.stepName, displayName: p.displayName })),
    scheduleId: r.scheduleId || undefined,
    scheduleTime: dateOf(r.scheduleTime),
  };
}

export function stepOf(s: pb.StepState | undefined): t.StepState {
  if (s === undefined) throw new TypeError("the server's answer has no step");
  return {
    stepId: s.stepId,
    runId: s.runId,
    stepName: s.stepName,
    rpcName: s.rpcName,
    data: decodeJson(s.dataJson),
    status: stepStatusOf(s.status),
    result: decodeJson(s.resultJson),
    error: failureOf(s.error),
    attemptCount: s.attemptCount,
    retries: s.retries,
    retryDelayMs: msOf(s.retryDelay),
    createTime: date(s.createTime),
    updateTime: date(s.updateTime),
    scheduledTime: dateOf(s.scheduledTime),
    runningTime: dateOf(s.runningTime),
    succeededTime: dateOf(s.succeededTime),
    failedTime: dateOf(s.failedTime),
    notBefore: dateOf(s.notBefore),
    workerId: s.workerId,
    fromStepName: s.fromStepName,
    childRunId: s.childRunId,
    branchKey: s.branchKey,
    options: stepOptionsOf(s.options),
  };
}

export function attemptOf(a: pb.StepAttempt): t.StepAttempt {
  return {
    stepId: a.stepId,
    stepName: a.stepName,
    attempt: a.attempt,
    status: stepStatusOf(a.status),
    result: decodeJson(a.resultJson),
    error: failureOf(a.error),
    createTime: date(a.createTime),
    updateTime: date(a.updateTime),
    scheduledTime: dateOf(a.scheduledTime),
    runningTime: dateOf(a.runningTime),
    succeededTime: dateOf(a.succeededTime),
    failedTime: dateOf(a.failedTime),
  };
}

// --- dispatch options and schedules -------------------------------------------------

/** The wire's StepOptions of the options given; undefined when none is set (nothing to send). */
export function stepOptionsToProto(o: t.StepOptions): MessageInitShape<typeof pb.StepOptionsSchema> | undefined {
  const init = {
    retries: o.retries,
    retryDelay: durationOf(o.retryDelayMs),
    backoffCoefficient: o.backoffCoefficient,
    maxRetryDelay: durationOf(o.maxRetryDelayMs),
    jitter: o.jitter,
    startToClose: durationOf(o.startToCloseMs),
    scheduleToStart: durationOf(o.scheduleToStartMs),
    priority: o.priority,
    concurrencyKey: o.concurrencyKey ?? "",
  };
  const given = Object.entries(init).some(([, v]) => v !== undefined && v !== "");
  return given ? init : undefined;
}

/** The options as the server stores them; an unset one is undefined (the key is always there). */
export function stepOptionsOf(o: pb.StepOptions | undefined): t.StepOptions {
  return {
    retries: o?.retries,
    retryDelayMs: msOf(o?.retryDelay),
    backoffCoefficient: o?.backoffCoefficient,
    maxRetryDelayMs: msOf(o?.maxRetryDelay),
    jitter: o?.jitter,
    startToCloseMs: msOf(o?.startToClose),
    scheduleToStartMs: msOf(o?.scheduleToStart),
    priority: o?.priority,
    concurrencyKey: o?.concurrencyKey || undefined,
  };
}

export function dispatchDefaultsOf(d: pb.DispatchDefaults | undefined): t.DispatchDefaults {
  if (d === undefined) throw new TypeError("the server's answer has no dispatch defaults");
  return {
    rpcName: d.rpcName,
    options: stepOptionsOf(d.options),
    concurrencyLimit: d.concurrencyLimit,
    rateLimit: d.rateLimit,
    ratePeriodMs: msOf(d.ratePeriod),
    updateTime: date(d.updateTime),
  };
}

const SCHEDULE_OVERLAPS: Record<t.ScheduleOverlap, pb.ScheduleOverlap> = {
  skip: pb.ScheduleOverlap.SKIP,
  allow: pb.ScheduleOverlap.ALLOW,
};
const SCHEDULE_CATCH_UPS: Record<t.ScheduleCatchUp, pb.ScheduleCatchUp> = {
  skip: pb.ScheduleCatchUp.SKIP,
  latest: pb.ScheduleCatchUp.LATEST,
};
const SCHEDULE_OVERLAP_NAMES = reverse(SCHEDULE_OVERLAPS);
const SCHEDULE_CATCH_UP_NAMES = reverse(SCHEDULE_CATCH_UPS);

export const scheduleOverlapToProto = (o: t.ScheduleOverlap): pb.ScheduleOverlap => toEnum(SCHEDULE_OVERLAPS, o);
export const scheduleCatchUpToProto = (c: t.ScheduleCatchUp): pb.ScheduleCatchUp => toEnum(SCHEDULE_CATCH_UPS, c);

export function scheduleOf(s: pb.Schedule | undefined): t.Schedule {
  if (s === undefined) throw new TypeError("the server's answer has no schedule");
  return {
    scheduleId: s.scheduleId,
    workflow: s.workflow,
    cron: s.cron || undefined,
    intervalMs: msOf(s.interval),
    timezone: s.timezone,
    input: decodeJson(s.inputJson),
    // An unknown value reads as skip, the server's default (as the Python client does).
    overlap: SCHEDULE_OVERLAP_NAMES.get(s.overlap) ?? "skip",
    catchUp: SCHEDULE_CATCH_UP_NAMES.get(s.catchUp) ?? "skip",
    paused: s.paused,
    nextFireTime: dateOf(s.nextFireTime),
    lastRunId: s.lastRunId || undefined,
    lastScheduleTime: dateOf(s.lastScheduleTime),
    lastRunStatus: RUN_STATUS_NAMES.get(s.lastRunStatus),
    overlapSkips: Number(s.overlapSkips),
    createTime: date(s.createTime),
    updateTime: date(s.updateTime),
  };
}

export function leaseInfoOf(l: pb.LeaseInfo): t.LeaseInfo {
  return {
    key: l.key,
    holder: l.holder,
    fencingToken: l.fencingToken,
    acquireTime: date(l.acquireTime),
    expireTime: date(l.expireTime),
  };
}

export function eventOf(e: pb.RunEvent | undefined): t.RunEvent {
  if (e === undefined) throw new TypeError("the server's answer has no event");
  const change = e.change;
  return {
    eventId: e.eventId,
    runId: e.runId,
    workflow: e.workflow,
    eventTime: date(e.eventTime),
    runStatus: change.case === "runChanged" ? runStatusOf(change.value.status) : undefined,
    step:
      change.case === "stepChanged"
        ? {
            stepId: change.value.stepId,
            stepName: change.value.stepName,
            attempt: change.value.attempt,
            status: stepStatusOf(change.value.status),
          }
        : undefined,
  };
}

export function workerInfoOf(w: pb.WorkerInfo): t.WorkerInfo {
  return {
    workerId: w.workerId,
    streamId: w.streamId,
    rpcNames: [...w.rpcNames],
    maxInFlight: w.maxInFlight,
    tasksInFlight: w.tasksInFlight,
    taskLeaseMs: msOf(w.taskLease) ?? 0,
    connectTime: date(w.connectTime),
    heartbeatTime: date(w.heartbeatTime),
    serverId: w.serverId,
    serverAddress: w.serverAddress,
  };
}

export function retentionPolicyOf(p: pb.RetentionPolicy | undefined): t.RetentionPolicy {
  if (p === undefined) throw new TypeError("the server's answer has no policy");
  return {
    policyId: p.policyId,
    workflow: p.workflow,
    statuses: p.statuses.map(runStatusOf),
    keepMs: msOf(p.keep) ?? 0,
    createTime: date(p.createTime),
    updateTime: date(p.updateTime),
  };
}

export function workflowVersionOf(v: pb.WorkflowVersion | undefined): t.WorkflowVersion {
  if (v === undefined) throw new TypeError("the server's answer has no version");
  return {
    workflow: v.workflow,
    graphHash: v.graphHash,
    graph: decodeJson(v.graphJson),
    source: v.source,
    status: versionStatusOf(v.status),
    createTime: date(v.createTime),
    updateTime: date(v.updateTime),
  };
}

/** The fence fields of a write request. */
export function fenceOf(fence: t.FenceOptions): { fencingToken?: bigint; leaseKey: string } {
  return {
    fencingToken: fence.fencingToken === undefined ? undefined : BigInt(fence.fencingToken),
    leaseKey: fence.leaseKey ?? "",
  };
}
