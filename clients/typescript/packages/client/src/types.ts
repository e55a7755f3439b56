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
