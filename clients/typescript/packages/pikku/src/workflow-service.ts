// WorkflowStateService: Pikku's workflow backend (PikkuWorkflowService) over a workflowstate
// server. Each write is the server's one atomic statement; withRunLock and withStepLock hold
// real leases, and the writes made inside them carry the lease's fencing token, so a holder
// that lost its lease cannot overwrite its successor's work.
import { AsyncLocalStorage } from "node:async_hooks";
import type { SerializedError } from "@pikku/core";
import {
  PikkuWorkflowService,
  WorkflowStepFunctionMismatchError,
  type StepState as PikkuStep,
  type StepStatus,
  type WorkflowPlannedStep,
  type WorkflowQueueOptions,
  type WorkflowRun,
  type WorkflowRunMirror,
  type WorkflowRunWire,
  type WorkflowStatus,
  type WorkflowVersionStatus,
} from "@pikku/core/workflow";
import {
  FailedPrecondition,
  type FenceOptions,
  type Lease,
  NotFound,
  type StepState,
  WorkflowStateClient,
} from "@workflowstate/client";
import { failureOf, pikkuStepOf, retryDelayMs } from "./convert.js";

/** The statuses a scheduled step reaches once a worker took it (as the refusal's prior_status names them). */
const TAKEN_BY_A_WORKER = new Set(["RUNNING", "SUCCEEDED", "FAILED"]);
import { clientOf, type WorkflowStateConnectOptions } from "./options.js";
import { WorkflowStateRunService } from "./run-service.js";

export interface WorkflowStateServiceOptions extends WorkflowStateConnectOptions, WorkflowQueueOptions {
  /** Passed to PikkuWorkflowService. */
  wireQueues?: boolean;
  mirror?: WorkflowRunMirror;
  /** The ttl of the leases behind withRunLock / withStepLock, in ms (kept alive meanwhile). Default 30 000. */
  lockTtlMs?: number;
  /** How long withRunLock / withStepLock wait for a held lock, in ms; omitted waits as long as it takes. */
  lockWaitTimeoutMs?: number;
}

/** The most ids one ListStalledRuns / ListUndispatchedSteps call returns (the server's limit). */
const MAX_SWEEP = 1000;

export class WorkflowStateService extends PikkuWorkflowService {
  readonly client: WorkflowStateClient;
  private readonly runs: WorkflowStateRunService;
  private readonly ownsClient: boolean;
  private readonly lockTtlMs: number;
  private readonly lockWaitTimeoutMs: number | undefined;
  /** The fence of the innermost lock the current async context holds. */
  private readonly fence = new AsyncLocalStorage<FenceOptions>();

  constructor(address: string | WorkflowStateClient, options: WorkflowStateServiceOptions = {}) {
    const { token: _token, tls: _tls, timeoutMs: _timeout, lockTtlMs, lockWaitTimeoutMs, ...pikkuOptions } = options;
    super(pikkuOptions);
    this.client = clientOf(address, options);
    this.ownsClient = typeof address === "string";
    this.runs = new WorkflowStateRunService(this.client);
    this.lockTtlMs = lockTtlMs ?? 30_000;
    this.lockWaitTimeoutMs = lockWaitTimeoutMs;
  }

  /** Checks that the server answers (nothing to create: the server owns its schema). */
  async init(): Promise<void> {
    await this.runs.init();
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.close();
  }

  private get fenced(): FenceOptions {
    return this.fence.getStore() ?? {};
  }

  // --- runs --------------------------------------------------------------------------

  protected async createRunImpl(
    workflowName: string,
    input: unknown,
    inline: boolean,
    graphHash: string,
    wire: WorkflowRunWire,
    options?: { deterministic?: boolean; plannedSteps?: WorkflowPlannedStep[] },
  ): Promise<string> {
    const run = await this.client.createRun(workflowName, input ?? null, {
      inline,
      graphHash: graphHash ?? "",
      metadata: wire ?? undefined,
      deterministic: options?.deterministic ?? false,
      plannedSteps: (options?.plannedSteps ?? []).map((p) => ({ stepName: p.stepName, displayName: p.displayName ?? "" })),
    });
    return run.runId;
  }

  async getRun(id: string): Promise<WorkflowRun | null> {
    return this.runs.getRun(id);
  }

  async getRunHistory(runId: string): Promise<Array<PikkuStep & { stepName: string }>> {
    return this.runs.getRunHistory(runId);
  }

  protected async updateRunStatusImpl(
    id: string,
    status: WorkflowStatus,
    output?: unknown,
    error?: SerializedError,
  ): Promise<void> {
    await this.client.updateRunStatus(id, status, {
      ...(output === undefined ? {} : { output }),
      error: error === undefined ? undefined : failureOf(error),
      ...this.fenced,
    });
  }

  // --- steps -------------------------------------------------------------------------

  protected async insertStepStateImpl(
    runId: string,
    stepName: string,
    rpcName: string | null,
    data: unknown,
    stepOptions?: { retries?: number; retryDelay?: string | number },
    fromStepName?: string,
  ): Promise<PikkuStep> {
    const step = await this.client.insertStepState(runId, stepName, rpcName, data ?? null, {
      retries: stepOptions?.retries,
      retryDelayMs: retryDelayMs(stepOptions?.retryDelay),
      fromStepName,
      ...this.fenced,
    });
    return pikkuStepOf(step);
  }

  /** The step; throws (as Pikku's backends do) when the run has none of that name. */
  async getStepState(runId: string, stepName: string): Promise<PikkuStep> {
    try {
      return pikkuStepOf(await this.client.getStepState(runId, stepName));
    } catch (err) {
      if (err instanceof NotFound) {
        throw new Error(`Step not found: runId=${runId}, stepName=${stepName}. Use insertStepState to create it.`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  protected async setStepRunningImpl(stepId: string): Promise<void> {
    await this.client.setStepRunning(stepId, this.fenced);
  }

  protected async setStepScheduledImpl(stepId: string): Promise<void> {
    try {
      await this.client.setStepScheduled(stepId, this.fenced);
    } catch (err) {
      // A worker's retry is scheduled by the server itself (a retryable fail with retries left), and
      // a worker may claim it before the engine, replaying, schedules it too: the step is then
      // past SCHEDULED in the worker's own path, which is what scheduling asked for.
      if (err instanceof FailedPrecondition && err.reason === "ILLEGAL_TRANSITION" && TAKEN_BY_A_WORKER.has(err.metadata.prior_status ?? "")) {
        return;
      }
      throw err;
    }
  }

  protected async setStepResultImpl(stepId: string, result: unknown): Promise<void> {
    await this.client.setStepResult(stepId, result ?? null, this.fenced);
  }

  protected async setStepErrorImpl(stepId: string, error: Error): Promise<void> {
    await this.client.setStepError(stepId, failureOf(error), this.fenced);
  }

  protected async setStepChildRunIdImpl(stepId: string, childRunId: string): Promise<void> {
    await this.client.setStepChildRun(stepId, childRunId, this.fenced);
  }

  protected async createRetryAttemptImpl(failedStepId: string, status: "pending" | "running"): Promise<PikkuStep> {
    return pikkuStepOf(await this.client.createRetryAttempt(failedStepId, status, this.fenced));
  }

  protected async setBranchTakenImpl(stepId: string, branchKey: string): Promise<void> {
    await this.client.setStepBranch(stepId, branchKey, this.fenced);
  }

  /**
   * Claims a step for execution with the server's ClaimStep, one statement: null when
   * another caller has it (running) or it is done (succeeded). Newer Pikku versions call
   * this in place of the read-then-write under withStepLock.
   */
  protected async claimStepForExecution(runId: string, stepName: string, rpcName: string): Promise<PikkuStep | null> {
    try {
      const { claimed, step } = await this.client.claimStep(runId, stepName, rpcName, this.fenced);
      if (claimed) return pikkuStepOf(step);
      return step.status === "succeeded" || step.status === "running" ? null : pikkuStepOf(step);
    } catch (err) {
      if (err instanceof FailedPrecondition && err.reason === "WRONG_RPC") {
        throw new WorkflowStepFunctionMismatchError(runId, stepName);
      }
      throw err;
    }
  }

  // --- locks -------------------------------------------------------------------------

  async withRunLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.holding(this.client.runLock(id, this.lockOptions), fn);
  }

  async withStepLock<T>(runId: string, stepName: string, fn: () => Promise<T>): Promise<T> {
    return this.holding(this.client.stepLock(runId, stepName, this.lockOptions), fn);
  }

  private get lockOptions(): { ttlMs: number; waitTimeoutMs: number | undefined } {
    return { ttlMs: this.lockTtlMs, waitTimeoutMs: this.lockWaitTimeoutMs };
  }

  /** Runs fn holding the lease, its writes fenced by the lease's token; releases it after. */
  private async holding<T>(acquiring: Promise<Lease>, fn: () => Promise<T>): Promise<T> {
    const lease = await acquiring;
    try {
      return await this.fence.run({ fencingToken: lease.fencingToken, leaseKey: lease.key }, fn);
    } finally {
      await lease.release();
    }
  }

  // --- graph state -------------------------------------------------------------------

  async getCompletedGraphState(
    runId: string,
  ): Promise<{ completedNodeIds: string[]; failedNodeIds: string[]; branchKeys: Record<string, string> }> {
    const completedNodeIds: string[] = [];
    const failedNodeIds: string[] = [];
    const branchKeys: Record<string, string> = {};
    for (const step of await this.client.listSteps(runId)) {
      if (step.status === "succeeded") {
        completedNodeIds.push(step.stepName);
        if (step.branchKey) branchKeys[step.stepName] = step.branchKey;
      } else if (step.status === "failed" && step.attemptCount >= (step.retries ?? 0) + 1) {
        // Failed for good: no retry left.
        failedNodeIds.push(step.stepName);
      }
    }
    return { completedNodeIds, failedNodeIds, branchKeys };
  }

  async getStepInstances(runId: string): Promise<Array<{ stepName: string; status: StepStatus; fromStepName?: string }>> {
    return (await this.client.listSteps(runId)).map((s) => ({
      stepName: s.stepName,
      status: s.status,
      fromStepName: s.fromStepName || undefined,
    }));
  }

  async getNodeResults(runId: string, nodeIds: string[]): Promise<Record<string, unknown>> {
    if (nodeIds.length === 0) return {};
    const wanted = new Set(nodeIds);
    const results: Record<string, unknown> = {};
    for (const step of await this.client.listSteps(runId)) {
      if (step.status === "succeeded" && wanted.has(step.stepName)) results[step.stepName] = step.result;
    }
    return results;
  }

  protected override async listStepStates(runId: string): Promise<Array<PikkuStep & { stepName: string }> | null> {
    try {
      return (await this.client.listSteps(runId)).map((s: StepState) => pikkuStepOf(s));
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
  }

  // --- run state and versions --------------------------------------------------------

  protected async updateRunStateImpl(runId: string, name: string, value: unknown): Promise<void> {
    await this.client.updateRunState(runId, name, value ?? null, this.fenced);
  }

  async getRunState(runId: string): Promise<Record<string, unknown>> {
    return this.client.getRunState(runId);
  }

  protected async upsertWorkflowVersionImpl(
    name: string,
    graphHash: string,
    graph: unknown,
    source: string,
    status?: WorkflowVersionStatus,
  ): Promise<void> {
    await this.client.upsertWorkflowVersion(name, graphHash, graph ?? null, { source, status });
  }

  protected async updateWorkflowVersionStatusImpl(
    name: string,
    graphHash: string,
    status: WorkflowVersionStatus,
  ): Promise<void> {
    await this.client.updateWorkflowVersionStatus(name, graphHash, status);
  }

  async getWorkflowVersion(name: string, graphHash: string): Promise<{ graph: unknown; source: string } | null> {
    return this.runs.getWorkflowVersion(name, graphHash);
  }

  // --- sweeps ------------------------------------------------------------------------

  protected override async findStalledRunIds(before: Date, limit: number): Promise<string[]> {
    return this.client.listStalledRuns(before, { maxRuns: Math.max(1, Math.min(limit, MAX_SWEEP)) });
  }

  protected override async findUndispatchedSteps(before: Date, limit: number): Promise<Array<{ runId: string; stepId: string }>> {
    return this.client.listUndispatchedSteps(before, { maxSteps: Math.max(1, Math.min(limit, MAX_SWEEP)) });
  }
}
