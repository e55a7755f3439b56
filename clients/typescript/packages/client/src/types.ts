// What the client's methods take and return: plain objects with JSON payloads as JS values,
// times as Date, durations as milliseconds and fencing tokens as bigint (int64 on the wire).

/** Where a run is in its life; completed, failed and cancelled are final. */
export type RunStatus = "running" | "completed" | "failed" | "cancelled" | "suspended";
/** Where the current attempt of a step is. */
export type StepStatus = "pending" | "scheduled" | "running" | "succeeded" | "failed" | "suspended";
/** Where a version of a workflow is in its life. */
export type WorkflowVersionStatus = "draft" | "active" | "declined";
/** Why a lease was lost. */
export type LeaseLostReason = "expired" | "taken_over" | "server_shutdown" | "stream_ended" | "unspecified";

/** Why an attempt or a run failed. */
export interface Failure {
  message: string;
  /** A stack trace, "" when none. */
  stack: string;
  /** A short machine-readable code (an error class name), "" when none. */
  code: string;
}

export interface PlannedStep {
  stepName: string;
  displayName: string;
}

export interface Run {
  runId: string;
  workflow: string;
  status: RunStatus;
  /** The run's input; undefined in a list without the full view. */
  input: unknown;
  /** The run's output; undefined until it completes with one. */
  output: unknown;
  error: Failure | undefined;
  createTime: Date;
  updateTime: Date;
  inline: boolean;
  graphHash: string;
  /** What the caller stored beside the run (Pikku: its wire); undefined when none. */
  metadata: unknown;
  deterministic: boolean;
  plannedSteps: PlannedStep[];
  /** The schedule that created the run; undefined for a run made by createRun. */
  scheduleId: string | undefined;
  /** The schedule's occurrence the run is for (when it was due); undefined without a schedule. */
  scheduleTime: Date | undefined;
}

/**
 * A step's retry and dispatch options (undefined: not set). At insert each one a step does not
 * set comes from its rpc name's dispatch defaults; the README's "Remote mode" has the semantics.
 */
export interface StepOptions {
  /** How many extra attempts after the first; not negative. */
  retries?: number;
  /** The wait before the first automatic retry; not negative. */
  retryDelayMs?: number;
  /** The growth of the wait per failed attempt (at least 1; unset: 1, a fixed wait). */
  backoffCoefficient?: number;
  /** The cap of a retry's wait; unset: no cap. */
  maxRetryDelayMs?: number;
  /** The largest fraction taken off a retry's wait at random, 0 to 1. */
  jitter?: number;
  /** The longest an attempt handed to a worker may run: then it fails "timed out" and is retried. */
  startToCloseMs?: number;
  /** The longest a scheduled attempt waits, from its due time, for a worker: then it fails, no retry. */
  scheduleToStartMs?: number;
  /** Higher is claimed first among due steps; unset: 0. */
  priority?: number;
  /** Steps of one key run at most the rpc name's concurrencyLimit at a time. */
  concurrencyKey?: string;
}

export interface StepState {
  stepId: string;
  runId: string;
  stepName: string;
  rpcName: string;
  data: unknown;
  status: StepStatus;
  /** The current attempt's result; undefined until it succeeds. */
  result: unknown;
  error: Failure | undefined;
  attemptCount: number;
  retries: number | undefined;
  retryDelayMs: number | undefined;
  createTime: Date;
  updateTime: Date;
  scheduledTime: Date | undefined;
  runningTime: Date | undefined;
  succeededTime: Date | undefined;
  failedTime: Date | undefined;
  notBefore: Date | undefined;
  workerId: string;
  fromStepName: string;
  childRunId: string;
  branchKey: string;
  /** The step's retry and dispatch options as stored (its rpc name's defaults filled in at insert). */
  options: StepOptions;
}

/** One attempt of a step, as the run's history keeps it. */
export interface StepAttempt {
  stepId: string;
  stepName: string;
  attempt: number;
  status: StepStatus;
  result: unknown;
  error: Failure | undefined;
  createTime: Date;
  updateTime: Date;
  scheduledTime: Date | undefined;
  runningTime: Date | undefined;
  succeededTime: Date | undefined;
  failedTime: Date | undefined;
}

export interface LeaseInfo {
  key: string;
  holder: string;
  fencingToken: bigint;
  acquireTime: Date;
  expireTime: Date;
}

export interface LeasePage {
  leases: LeaseInfo[];
  /** Pass it as pageToken for the next page; undefined on the last one. */
  nextPageToken: string | undefined;
}

export interface RunPage {
  runs: Run[];
  nextPageToken: string | undefined;
}

export interface WorkflowSummary {
  workflow: string;
  runCounts: Partial<Record<RunStatus, number>>;
}

export interface RetentionPolicy {
  policyId: bigint;
  workflow: string;
  statuses: RunStatus[];
  keepMs: number;
  createTime: Date;
  updateTime: Date;
}

/** The dispatch defaults of one rpc name (setDispatchDefaults). */
export interface DispatchDefaults {
  rpcName: string;
  /** The options a step of this rpc name takes at insert for each it does not set (no concurrencyKey). */
  options: StepOptions;
  /** At most this many attempts of one concurrency key run at once; undefined: no limit. */
  concurrencyLimit: number | undefined;
  /** At most this many steps claimed per ratePeriodMs (a token bucket); undefined: no limit. */
  rateLimit: number | undefined;
  ratePeriodMs: number | undefined;
  updateTime: Date;
}

/** What a schedule's occurrence does while its latest run has not finished: make none, or one anyway. */
export type ScheduleOverlap = "skip" | "allow";
/** What runs for occurrences no server handled in time: none over 60 s late, or the latest once. */
export type ScheduleCatchUp = "skip" | "latest";

/** A schedule (createSchedule): the servers create a run of `workflow` at each occurrence. */
export interface Schedule {
  scheduleId: string;
  workflow: string;
  /** Its 5-field cron expression; undefined for an interval schedule. */
  cron: string | undefined;
  /** Its interval in ms (occurrences at its multiples since the Unix epoch); undefined for cron. */
  intervalMs: number | undefined;
  /** The IANA timezone the cron expression is read in ("UTC" for an interval). */
  timezone: string;
  /** The input of each run. */
  input: unknown;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  paused: boolean;
  /** Its next occurrence; undefined while paused. */
  nextFireTime: Date | undefined;
  /** Its latest run; undefined when it made none. */
  lastRunId: string | undefined;
  lastScheduleTime: Date | undefined;
  /** Its latest run's status now. */
  lastRunStatus: RunStatus | undefined;
  /** Occurrences that made no run because the latest run had not finished. */
  overlapSkips: number;
  createTime: Date;
  /** When it was last created, paused, resumed or fired. */
  updateTime: Date;
}

export interface SchedulePage {
  schedules: Schedule[];
  /** Pass it as pageToken for the next page; undefined on the last one. */
  nextPageToken: string | undefined;
}

export interface WorkerInfo {
  workerId: string;
  streamId: string;
  rpcNames: string[];
  maxInFlight: number;
  tasksInFlight: number;
  taskLeaseMs: number;
  connectTime: Date;
  heartbeatTime: Date;
  serverId: string;
  serverAddress: string;
}

/** One change of a run: of the run itself (`step` undefined) or of one attempt of a step. */
export interface RunEvent {
  eventId: bigint;
  runId: string;
  workflow: string;
  eventTime: Date;
  /** The run's new status, for a change of the run. */
  runStatus: RunStatus | undefined;
  /** The attempt's new status, for a change of a step. */
  step: { stepId: string; stepName: string; attempt: number; status: StepStatus } | undefined;
}

export interface ClaimResult {
  /** True when this call moved the step to running: the caller must now run it. */
  claimed: boolean;
  step: StepState;
}

export interface WorkflowVersion {
  workflow: string;
  graphHash: string;
  graph: unknown;
  source: string;
  status: WorkflowVersionStatus;
  createTime: Date;
  updateTime: Date;
}

export interface StepRef {
  runId: string;
  stepId: string;
}

/** What every call takes: its deadline (replacing the client's default) and a signal to abort it. */
export interface CallOptions {
  /** Milliseconds before the call fails with DeadlineExceeded; 0 for none. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** What every write takes: a fencing token, checked against the latest token of leaseKey. */
export interface FenceOptions {
  fencingToken?: bigint | number;
  /** The key the token belongs to; the run's key "run:<runId>" when omitted. */
  leaseKey?: string;
}

export type WriteOptions = CallOptions & FenceOptions;
