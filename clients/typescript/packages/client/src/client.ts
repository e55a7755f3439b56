// WorkflowStateClient: the typed client of a workflowstate server, with the Python client's
// methods in camelCase (client/_async.py is the model for names and semantics).
import { randomUUID } from "node:crypto";
import { type Client, createClient } from "@connectrpc/connect";
import { Connection, type ConnectionOptions } from "./connection.js";
import * as c from "./convert.js";
import { NotFound } from "./errors.js";
import { WorkflowStateService, RunOrder, RunView } from "./gen/workflowstate/v1/index.js";
import { holdLease, type Lease, type LeaseOptions, runLockKey, stepLockKey } from "./lease.js";
import { RETRYABLE_METHODS, withDeadline, type Attempt } from "./retry.js";
import type * as t from "./types.js";
import { followEvents } from "./watch.js";

export interface ClientOptions extends ConnectionOptions {
  /** The default deadline of each call in milliseconds; 0 for none. Default 30 000. */
  timeoutMs?: number;
  /** Retry UNAVAILABLE for the calls that are safe to repeat (5 attempts, backoff). Default true. */
  retry?: boolean;
}

/** Which runs: every field narrows; `*After` includes its instant, `*Before` excludes it. */
export interface RunFilter {
  workflow?: string;
  statuses?: t.RunStatus[];
  createdAfter?: Date;
  createdBefore?: Date;
  updatedAfter?: Date;
  updatedBefore?: Date;
}

export interface ListRunsOptions extends RunFilter, t.CallOptions {
  /** Oldest first instead of newest first. */
  oldestFirst?: boolean;
  /** With input, output and the error's stack. */
  full?: boolean;
  /** 1 to 1000; 50 when omitted. */
  pageSize?: number;
  pageToken?: string;
}

export interface CreateRunOptions extends t.CallOptions {
  /** An idempotency key: the same key returns the same run. The client makes one when omitted. */
  requestId?: string;
  inline?: boolean;
  graphHash?: string;
  /** Any JSON value kept with the run (Pikku keeps its wire here); null or omitted: none. */
  metadata?: unknown;
  deterministic?: boolean;
  plannedSteps?: t.PlannedStep[];
}

/** The step's retry and dispatch options (each not given comes from its rpc name's defaults). */
export interface InsertStepOptions extends t.WriteOptions, t.StepOptions {
  fromStepName?: string;
}

export interface SetStepScheduledOptions extends t.WriteOptions {
  notBefore?: Date;
  delayMs?: number;
  /** Replace those of the step's stored options that they set, from this attempt on. */
  options?: t.StepOptions;
}

export interface CreateScheduleOptions extends t.CallOptions {
  /** A 5-field cron expression, read in `timezone`; give it or intervalMs. */
  cron?: string;
  /** Occurrences at the multiples of this interval since the Unix epoch; at least the server's --schedule-min-interval (60_000 unless it is told otherwise). */
  intervalMs?: number;
  /** The IANA timezone of `cron`; UTC when omitted. */
  timezone?: string;
  /** Default "skip". */
  overlap?: t.ScheduleOverlap;
  /** Default "skip". */
  catchUp?: t.ScheduleCatchUp;
}

export interface SetDispatchDefaultsOptions extends t.CallOptions {
  /** The options its steps take at insert for each they do not set (no concurrencyKey). */
  options?: t.StepOptions;
  /** At most this many attempts of one concurrency key run at once. */
  concurrencyLimit?: number;
  /** At most this many claims per ratePeriodMs. */
  rateLimit?: number;
  ratePeriodMs?: number;
}

export interface WatchOptions {
  /** Resume after this event (0n: from the run's first event). */
  afterEventId?: bigint;
  /** Give up (Unavailable) after this many ms of failed reconnects; 0 for never. Default 60 000. */
  reconnectTimeoutMs?: number;
  /** Ends the iteration. */
  signal?: AbortSignal;
}

function filterOf(f: RunFilter) {
  return {
    workflow: f.workflow ?? "",
    statuses: (f.statuses ?? []).map(c.runStatusToProto),
    createdAfter: c.timestampOf(f.createdAfter),
    createdBefore: c.timestampOf(f.createdBefore),
    updatedAfter: c.timestampOf(f.updatedAfter),
    updatedBefore: c.timestampOf(f.updatedBefore),
  };
}

/**
 * A client of one workflowstate server:
 *
 *     const client = new WorkflowStateClient("127.0.0.1:50051");
 *     const run = await client.createRun("checkout", { cart: 42 });
 *     ...
 *     client.close();
 *
 * Every method takes, last, an options object with `timeoutMs` (replacing the client's
 * default) and `signal` (an AbortSignal); every write also takes `fencingToken` and `leaseKey`
 * (see lease()). Failures raise WorkflowStateError subclasses keyed by gRPC code.
 */
export class WorkflowStateClient {
  /** The generated connect client, for what this class does not wrap. */
  readonly rpc: Client<typeof WorkflowStateService>;
  private readonly connection: Connection;
  private readonly timeoutMs: number;
  private readonly retry: boolean;
  private fence: t.FenceOptions = {};

  constructor(address: string, options: ClientOptions = {}) {
    this.connection = new Connection(address, options);
    this.rpc = createClient(WorkflowStateService, this.connection.transport);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = options.retry ?? true;
  }

  /** Closes the connection; calls and streams in flight fail. */
  close(): void {
    this.connection.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The same client, passing `fence` on every write (what `lease.client` is). */
  withFence(fence: t.FenceOptions): WorkflowStateClient {
    const view = Object.create(this) as WorkflowStateClient;
    view.fence = { fencingToken: fence.fencingToken, leaseKey: fence.leaseKey };
    return view;
  }

  private call<T>(method: string, options: t.CallOptions | undefined, send: (a: Attempt) => Promise<T>): Promise<T> {
    return withDeadline(send, options, this.timeoutMs, this.retry && RETRYABLE_METHODS.has(method));
  }

  private fenceOf(options: t.FenceOptions | undefined) {
    return c.fenceOf({
      fencingToken: options?.fencingToken ?? this.fence.fencingToken,
      leaseKey: options?.leaseKey ?? this.fence.leaseKey,
    });
  }

  // --- runs ------------------------------------------------------------------------

  /** Starts a run of `workflow` in status running. */
  async createRun(workflow: string, input?: unknown, options: CreateRunOptions = {}): Promise<t.Run> {
    const request = {
      workflow,
      inputJson: c.encodeJson(input),
      requestId: options.requestId ?? randomUUID(),
      inline: options.inline ?? false,
      graphHash: options.graphHash ?? "",
      metadataJson: options.metadata == null ? "" : c.encodeJson(options.metadata),
      deterministic: options.deterministic ?? false,
      plannedSteps: options.plannedSteps ?? [],
    };
    const res = await this.call("CreateRun", options, (a) => this.rpc.createRun(request, a));
    return c.runOf(res.run);
  }

  /** The run, or undefined when no run has that id (InvalidArgument for a malformed id). */
  async getRun(runId: string, options?: t.CallOptions): Promise<t.Run | undefined> {
    try {
      const res = await this.call("GetRun", options, (a) => this.rpc.getRun({ runId }, a));
      return c.runOf(res.run);
    } catch (err) {
      if (err instanceof NotFound) return undefined;
      throw err;
    }
  }

  /** Every attempt of every step of the run, oldest first. */
  async getRunHistory(runId: string, options?: t.CallOptions): Promise<t.StepAttempt[]> {
    const res = await this.call("GetRunHistory", options, (a) => this.rpc.getRunHistory({ runId }, a));
    return res.attempts.map(c.attemptOf);
  }

  /** Moves a run to `status`, storing its output or error. */
  async updateRunStatus(
    runId: string,
    status: t.RunStatus,
    options: t.WriteOptions & { output?: unknown; error?: c.FailureInput } = {},
  ): Promise<t.Run> {
    const request = {
      runId,
      status: c.runStatusToProto(status),
      outputJson: "output" in options ? c.encodeJson(options.output) : undefined,
      error: options.error === undefined ? undefined : c.failureToProto(options.error),
      ...this.fenceOf(options),
    };
    const res = await this.call("UpdateRunStatus", options, (a) => this.rpc.updateRunStatus(request, a));
    return c.runOf(res.run);
  }

  /** One page of the runs that match, newest first unless oldestFirst. */
  async listRuns(options: ListRunsOptions = {}): Promise<t.RunPage> {
    const request = {
      filter: filterOf(options),
      orderBy: options.oldestFirst ? RunOrder.CREATE_TIME_ASC : RunOrder.CREATE_TIME_DESC,
      pageSize: options.pageSize ?? 0,
      pageToken: options.pageToken ?? "",
      view: options.full ? RunView.FULL : RunView.BASIC,
    };
    const res = await this.call("ListRuns", options, (a) => this.rpc.listRuns(request, a));
    return { runs: res.runs.map(c.runOf), nextPageToken: res.nextPageToken || undefined };
  }

  /** Every run that matches, page after page. */
  async *iterRuns(options: Omit<ListRunsOptions, "pageToken"> = {}): AsyncGenerator<t.Run> {
    let pageToken: string | undefined;
    do {
      const page = await this.listRuns({ ...options, pageToken });
      yield* page.runs;
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
  }

  /** Cancels a running run (a cancelled one: no-op). */
  async cancelRun(runId: string, options: t.CallOptions & { reason?: string } = {}): Promise<t.Run> {
    const request = { runId, reason: options.reason ?? "" };
    const res = await this.call("CancelRun", options, (a) => this.rpc.cancelRun(request, a));
    return c.runOf(res.run);
  }

  /** Cancels up to maxRuns running runs that match, oldest first; their ids. */
  async cancelRuns(options: RunFilter & t.CallOptions & { maxRuns?: number; reason?: string } = {}): Promise<string[]> {
    const request = { filter: filterOf(options), maxRuns: options.maxRuns ?? 1000, reason: options.reason ?? "" };
    const res = await this.call("CancelRuns", options, (a) => this.rpc.cancelRuns(request, a));
    return [...res.runIds];
  }

  /** Erases a run with its steps, attempts and events; a running one only with force. */
  async deleteRun(runId: string, options: t.CallOptions & { force?: boolean } = {}): Promise<void> {
    const request = { runId, force: options.force ?? false };
    await this.call("DeleteRun", options, (a) => this.rpc.deleteRun(request, a));
  }

  /** Erases up to maxRuns runs that match, oldest first; their ids. */
  async deleteRuns(options: RunFilter & t.CallOptions & { maxRuns?: number; force?: boolean } = {}): Promise<string[]> {
    const request = { filter: filterOf(options), maxRuns: options.maxRuns ?? 1000, force: options.force ?? false };
    const res = await this.call("DeleteRuns", options, (a) => this.rpc.deleteRuns(request, a));
    return [...res.runIds];
  }

  /** Every step of the run, in insertion order. */
  async listSteps(runId: string, options?: t.CallOptions): Promise<t.StepState[]> {
    const res = await this.call("ListSteps", options, (a) => this.rpc.listSteps({ runId }, a));
    return res.steps.map(c.stepOf);
  }

  /** Every workflow that has runs, with its run counts by status. */
  async listWorkflows(options?: t.CallOptions): Promise<t.WorkflowSummary[]> {
    const res = await this.call("ListWorkflows", options, (a) => this.rpc.listWorkflows({}, a));
    return res.workflows.map((w) => ({
      workflow: w.workflow,
      runCounts: Object.fromEntries(w.runCounts.map((rc) => [c.runStatusOf(rc.status), Number(rc.runCount)])),
    }));
  }

  async setRetentionPolicy(
    options: t.CallOptions & { workflow?: string; statuses?: t.RunStatus[]; keepMs: number },
  ): Promise<t.RetentionPolicy> {
    const request = {
      workflow: options.workflow ?? "",
      statuses: (options.statuses ?? []).map(c.runStatusToProto),
      keep: c.durationOf(options.keepMs),
    };
    const res = await this.call("SetRetentionPolicy", options, (a) => this.rpc.setRetentionPolicy(request, a));
    return c.retentionPolicyOf(res.policy);
  }

  async listRetentionPolicies(options?: t.CallOptions): Promise<t.RetentionPolicy[]> {
    const res = await this.call("ListRetentionPolicies", options, (a) => this.rpc.listRetentionPolicies({}, a));
    return res.policies.map(c.retentionPolicyOf);
  }

  async deleteRetentionPolicy(policyId: bigint | number, options?: t.CallOptions): Promise<void> {
    const request = { policyId: BigInt(policyId) };
    await this.call("DeleteRetentionPolicy", options, (a) => this.rpc.deleteRetentionPolicy(request, a));
  }

  /**
   * Sets (replaces) the dispatch defaults of `rpcName` on every server: the options its steps
   * take at insert when they set none of their own, how many attempts of one concurrency key run
   * at once, and a rate limit of rateLimit claims per ratePeriodMs. Needs an admin token on a
   * server with auth. InvalidArgument naming the field for a bad value.
   */
  async setDispatchDefaults(rpcName: string, options: SetDispatchDefaultsOptions = {}): Promise<t.DispatchDefaults> {
    const request = {
      defaults: {
        rpcName,
        options: c.stepOptionsToProto(options.options ?? {}),
        concurrencyLimit: options.concurrencyLimit,
        rateLimit: options.rateLimit,
        ratePeriod: c.durationOf(options.ratePeriodMs),
      },
    };
    const res = await this.call("SetDispatchDefaults", options, (a) => this.rpc.setDispatchDefaults(request, a));
    return c.dispatchDefaultsOf(res.defaults);
  }

  /** Every rpc name's dispatch defaults, by rpc name. */
  async listDispatchDefaults(options?: t.CallOptions): Promise<t.DispatchDefaults[]> {
    const res = await this.call("ListDispatchDefaults", options, (a) => this.rpc.listDispatchDefaults({}, a));
    return res.defaults.map(c.dispatchDefaultsOf);
  }

  /** Removes the dispatch defaults of `rpcName` (steps keep the options they took); NotFound when none. */
  async deleteDispatchDefaults(rpcName: string, options?: t.CallOptions): Promise<void> {
    await this.call("DeleteDispatchDefaults", options, (a) => this.rpc.deleteDispatchDefaults({ rpcName }, a));
  }

  /** The worker streams connected to any server sharing the schema. */
  async listWorkers(options?: t.CallOptions): Promise<t.WorkerInfo[]> {
    const res = await this.call("ListWorkers", options, (a) => this.rpc.listWorkers({}, a));
    return res.workers.map(c.workerInfoOf);
  }

  // --- schedules -------------------------------------------------------------------

  /**
   * Makes the servers create a run of `workflow` with `input` at each occurrence of `cron` (5
   * fields, in `timezone`) or of `intervalMs`, exactly once per occurrence across all servers.
   * Each run is an ordinary running run with scheduleId and scheduleTime set. The same call
   * again returns the schedule as it is; another with the same id is AlreadyExists.
   * InvalidArgument names a bad field.
   */
  async createSchedule(
    scheduleId: string,
    workflow: string,
    input?: unknown,
    options: CreateScheduleOptions = {},
  ): Promise<t.Schedule> {
    const request = {
      scheduleId,
      workflow,
      cron: options.cron ?? "",
      interval: c.durationOf(options.intervalMs),
      timezone: options.timezone ?? "",
      inputJson: c.encodeJson(input),
      overlap: c.scheduleOverlapToProto(options.overlap ?? "skip"),
      catchUp: c.scheduleCatchUpToProto(options.catchUp ?? "skip"),
    };
    const res = await this.call("CreateSchedule", options, (a) => this.rpc.createSchedule(request, a));
    return c.scheduleOf(res.schedule);
  }

  /** One page of the schedules, by id; pageSize 1 to 1000 (50 when omitted). */
  async listSchedules(
    options: t.CallOptions & { pageSize?: number; pageToken?: string } = {},
  ): Promise<t.SchedulePage> {
    const request = { pageSize: options.pageSize ?? 0, pageToken: options.pageToken ?? "" };
    const res = await this.call("ListSchedules", options, (a) => this.rpc.listSchedules(request, a));
    return { schedules: res.schedules.map(c.scheduleOf), nextPageToken: res.nextPageToken || undefined };
  }

  /** Every schedule, page after page. */
  async *iterSchedules(options: t.CallOptions & { pageSize?: number } = {}): AsyncGenerator<t.Schedule> {
    let pageToken: string | undefined;
    do {
      const page = await this.listSchedules({ ...options, pageToken });
      yield* page.schedules;
      pageToken = page.nextPageToken;
    } while (pageToken !== undefined);
  }

  /** Stops the schedule firing until resumeSchedule (a no-op when paused); NotFound for an unknown id. */
  async pauseSchedule(scheduleId: string, options?: t.CallOptions): Promise<t.Schedule> {
    const res = await this.call("PauseSchedule", options, (a) => this.rpc.pauseSchedule({ scheduleId }, a));
    return c.scheduleOf(res.schedule);
  }

  /** Lets a paused schedule fire again from its first occurrence after now (a no-op when not paused). */
  async resumeSchedule(scheduleId: string, options?: t.CallOptions): Promise<t.Schedule> {
    const res = await this.call("ResumeSchedule", options, (a) => this.rpc.resumeSchedule({ scheduleId }, a));
    return c.scheduleOf(res.schedule);
  }

  /** Removes the schedule; its runs stay. NotFound for an unknown id (never retried automatically). */
  async deleteSchedule(scheduleId: string, options?: t.CallOptions): Promise<void> {
    await this.call("DeleteSchedule", options, (a) => this.rpc.deleteSchedule({ scheduleId }, a));
  }

  // --- steps -----------------------------------------------------------------------

  /**
   * Creates step `stepName` of a running (or suspended) run, pending at attempt 1. `rpcName` is
   * the function that runs it (null or "" for none: no worker is ever handed it). Never retried
   * automatically: a repeat after a lost reply would be AlreadyExists.
   */
  async insertStepState(
    runId: string,
    stepName: string,
    rpcName: string | null,
    data?: unknown,
    options: InsertStepOptions = {},
  ): Promise<t.StepState> {
    const request = {
      runId,
      stepName,
      rpcName: rpcName ?? "",
      dataJson: c.encodeJson(data),
      options: c.stepOptionsToProto(options),
      fromStepName: options.fromStepName ?? "",
      ...this.fenceOf(options),
    };
    const res = await this.call("InsertStepState", options, (a) => this.rpc.insertStepState(request, a));
    return c.stepOf(res.step);
  }

  /** The step named `stepName` of the run; NotFound when missing. */
  async getStepState(runId: string, stepName: string, options?: t.CallOptions): Promise<t.StepState> {
    const res = await this.call("GetStepState", options, (a) => this.rpc.getStepState({ runId, stepName }, a));
    return c.stepOf(res.step);
  }

  /** Makes a pending step due for workers: at once, at notBefore, or after delayMs (server's clock). */
  async setStepScheduled(stepId: string, options: SetStepScheduledOptions = {}): Promise<t.StepState> {
    if (options.notBefore !== undefined && options.delayMs !== undefined) {
      throw new TypeError("give notBefore or delayMs, not both");
    }
    const request = {
      stepId,
      notBefore: c.timestampOf(options.notBefore),
      delay: c.durationOf(options.delayMs),
      options: c.stepOptionsToProto(options.options ?? {}),
      ...this.fenceOf(options),
    };
    const res = await this.call("SetStepScheduled", options, (a) => this.rpc.setStepScheduled(request, a));
    return c.stepOf(res.step);
  }

  async setStepRunning(stepId: string, options: t.WriteOptions = {}): Promise<t.StepState> {
    const request = { stepId, ...this.fenceOf(options) };
    const res = await this.call("SetStepRunning", options, (a) => this.rpc.setStepRunning(request, a));
    return c.stepOf(res.step);
  }

  /** Moves the step to succeeded with `result` (any JSON value). */
  async setStepResult(stepId: string, result: unknown, options: t.WriteOptions = {}): Promise<t.StepState> {
    const request = { stepId, resultJson: c.encodeJson(result), ...this.fenceOf(options) };
    const res = await this.call("SetStepResult", options, (a) => this.rpc.setStepResult(request, a));
    return c.stepOf(res.step);
  }

  /** Moves the step to failed; an Error is stored with its message, stack and name. */
  async setStepError(stepId: string, error: c.FailureInput, options: t.WriteOptions = {}): Promise<t.StepState> {
    const request = { stepId, error: c.failureToProto(error), ...this.fenceOf(options) };
    const res = await this.call("SetStepError", options, (a) => this.rpc.setStepError(request, a));
    return c.stepOf(res.step);
  }

  /** Starts the next attempt of a failed step, in status pending or running. */
  async createRetryAttempt(
    stepId: string,
    status: t.StepStatus = "pending",
    options: t.WriteOptions = {},
  ): Promise<t.StepState> {
    const request = { stepId, status: c.stepStatusToProto(status), ...this.fenceOf(options) };
    const res = await this.call("CreateRetryAttempt", options, (a) => this.rpc.createRetryAttempt(request, a));
    return c.stepOf(res.step);
  }

  // --- engine state ------------------------------------------------------------------

  /** Pauses the step's current attempt until something outside the workflow resumes it. */
  async setStepSuspended(stepId: string, options: t.WriteOptions = {}): Promise<t.StepState> {
    const request = { stepId, ...this.fenceOf(options) };
    const res = await this.call("SetStepSuspended", options, (a) => this.rpc.setStepSuspended(request, a));
    return c.stepOf(res.step);
  }

  /** Records the run the step's current attempt started as its child. */
  async setStepChildRun(stepId: string, childRunId: string, options: t.WriteOptions = {}): Promise<t.StepState> {
    const request = { stepId, childRunId, ...this.fenceOf(options) };
    const res = await this.call("SetStepChildRun", options, (a) => this.rpc.setStepChildRun(request, a));
    return c.stepOf(res.step);
  }

  /** Records which branch the step's current attempt took. */
  async setStepBranch(stepId: string, branchKey: string, options: t.WriteOptions = {}): Promise<t.StepState> {
    const request = { stepId, branchKey, ...this.fenceOf(options) };
    const res = await this.call("SetStepBranch", options, (a) => this.rpc.setStepBranch(request, a));
    return c.stepOf(res.step);
  }

  /**
   * Claims the step to run it, in one statement: of callers racing for it, exactly one gets
   * `claimed` true. A pending or scheduled step becomes running; a failed one starts its next
   * attempt running; a running, suspended or succeeded one comes back as it is. `rpcName` must
   * be the step's (null or "" for none), else FailedPrecondition. Never retried automatically.
   */
  async claimStep(
    runId: string,
    stepName: string,
    rpcName: string | null,
    options: t.WriteOptions = {},
  ): Promise<t.ClaimResult> {
    const request = { runId, stepName, rpcName: rpcName ?? "", ...this.fenceOf(options) };
    const res = await this.call("ClaimStep", options, (a) => this.rpc.claimStep(request, a));
    return { claimed: res.claimed, step: c.stepOf(res.step) };
  }

  /** Sets one variable of the run's state to `value` (any JSON value). */
  async updateRunState(runId: string, name: string, value: unknown, options: t.WriteOptions = {}): Promise<void> {
    const request = { runId, name, valueJson: c.encodeJson(value), ...this.fenceOf(options) };
    await this.call("UpdateRunState", options, (a) => this.rpc.updateRunState(request, a));
  }

  /** The run's state variables by name ({} when none was set). */
  async getRunState(runId: string, options?: t.CallOptions): Promise<Record<string, unknown>> {
    const res = await this.call("GetRunState", options, (a) => this.rpc.getRunState({ runId }, a));
    return (c.decodeJson(res.stateJson) ?? {}) as Record<string, unknown>;
  }

  /** Records a version of a workflow's graph; an existing one is kept as it is (created false). */
  async upsertWorkflowVersion(
    workflow: string,
    graphHash: string,
    graph: unknown,
    options: t.CallOptions & { source?: string; status?: t.WorkflowVersionStatus } = {},
  ): Promise<{ version: t.WorkflowVersion; created: boolean }> {
    const request = {
      workflow,
      graphHash,
      graphJson: c.encodeJson(graph),
      source: options.source ?? "",
      status: options.status === undefined ? 0 : c.versionStatusToProto(options.status),
    };
    const res = await this.call("UpsertWorkflowVersion", options, (a) => this.rpc.upsertWorkflowVersion(request, a));
    return { version: c.workflowVersionOf(res.version), created: res.created };
  }

  /** One version of a workflow; NotFound when it has none with that hash. */
  async getWorkflowVersion(workflow: string, graphHash: string, options?: t.CallOptions): Promise<t.WorkflowVersion> {
    const res = await this.call("GetWorkflowVersion", options, (a) => this.rpc.getWorkflowVersion({ workflow, graphHash }, a));
    return c.workflowVersionOf(res.version);
  }

  async updateWorkflowVersionStatus(
    workflow: string,
    graphHash: string,
    status: t.WorkflowVersionStatus,
    options?: t.CallOptions,
  ): Promise<t.WorkflowVersion> {
    const request = { workflow, graphHash, status: c.versionStatusToProto(status) };
    const res = await this.call("UpdateWorkflowVersionStatus", options, (a) =>
      this.rpc.updateWorkflowVersionStatus(request, a),
    );
    return c.workflowVersionOf(res.version);
  }

  /**
   * Ids of running runs nothing is moving (no step running, scheduled or suspended, and neither
   * the run nor a step changed since updatedBefore), oldest change first, at most maxRuns (1 to
   * 1000; default 100).
   */
  async listStalledRuns(updatedBefore: Date, options: t.CallOptions & { maxRuns?: number } = {}): Promise<string[]> {
    const request = { updatedBefore: c.timestampOf(updatedBefore), maxRuns: options.maxRuns ?? 100 };
    const res = await this.call("ListStalledRuns", options, (a) => this.rpc.listStalledRuns(request, a));
    return [...res.runIds];
  }

  /**
   * Pending steps of running runs unchanged since updatedBefore, oldest change first, at most
   * maxSteps (1 to 1000; default 100): steps whose dispatch may have been lost.
   */
  async listUndispatchedSteps(
    updatedBefore: Date,
    options: t.CallOptions & { maxSteps?: number } = {},
  ): Promise<t.StepRef[]> {
    const request = { updatedBefore: c.timestampOf(updatedBefore), maxSteps: options.maxSteps ?? 100 };
    const res = await this.call("ListUndispatchedSteps", options, (a) => this.rpc.listUndispatchedSteps(request, a));
    return res.steps.map((s) => ({ runId: s.runId, stepId: s.stepId }));
  }

  // --- leases ----------------------------------------------------------------------

  /**
   * Waits for and holds the lease on `key`, kept alive in the background until released:
   *
   *     await using lease = await client.lease("invoice:42", { ttlMs: 30_000 });
   *     await lease.client.setStepResult(stepId, result);   // fenced by lease.fencingToken
   *
   * (or try { ... } finally { await lease.release(); }). DeadlineExceeded when waitTimeoutMs
   * passes with the key still held; InvalidArgument for an empty key or a ttl the server refuses.
   */
  lease(key: string, options: LeaseOptions = {}): Promise<Lease> {
    return holdLease(this, key, options);
  }

  /** lease() on the run's key, "run:<runId>": the key a fenced write checks by default. */
  runLock(runId: string, options: LeaseOptions = {}): Promise<Lease> {
    return this.lease(runLockKey(runId), options);
  }

  /** lease() on the step's key, "step:<runId>:<stepName>". */
  stepLock(runId: string, stepName: string, options: LeaseOptions = {}): Promise<Lease> {
    return this.lease(stepLockKey(runId, stepName), options);
  }

  /** Who holds the lease on `key`, or undefined when it is free. */
  async getLease(key: string, options?: t.CallOptions): Promise<t.LeaseInfo | undefined> {
    try {
      const res = await this.call("GetLease", options, (a) => this.rpc.getLease({ key }, a));
      return res.lease === undefined ? undefined : c.leaseInfoOf(res.lease);
    } catch (err) {
      if (err instanceof NotFound) return undefined;
      throw err;
    }
  }

  /** One page of the leases held now, by key. */
  async listLeases(
    options: t.CallOptions & { keyPrefix?: string; pageSize?: number; pageToken?: string } = {},
  ): Promise<t.LeasePage> {
    const request = { keyPrefix: options.keyPrefix ?? "", pageSize: options.pageSize ?? 0, pageToken: options.pageToken ?? "" };
    const res = await this.call("ListLeases", options, (a) => this.rpc.listLeases(request, a));
    return { leases: res.leases.map(c.leaseInfoOf), nextPageToken: res.nextPageToken || undefined };
  }

  // --- events ----------------------------------------------------------------------

  /**
   * The events of one run, in order, until the event that finishes it:
   *
   *     for await (const event of client.watchRun(runId)) { ... }
   *
   * When the server goes away (UNAVAILABLE) a new stream resumes after the last event
   * received, so no event is missed or repeated. NotFound for an unknown run or afterEventId.
   */
  watchRun(runId: string, options: WatchOptions = {}): AsyncGenerator<t.RunEvent> {
    return followEvents(
      (afterEventId, signal) => this.rpc.watchRun({ runId, afterEventId }, { signal }),
      options,
      true,
    );
  }

  /** The events of every run (of `workflow` only, when given), in order, for ever. */
  streamRunEvents(options: WatchOptions & { workflow?: string } = {}): AsyncGenerator<t.RunEvent> {
    return followEvents(
      (afterEventId, signal) => this.rpc.streamRunEvents({ workflow: options.workflow ?? "", afterEventId }, { signal }),
      options,
      false,
    );
  }
}
