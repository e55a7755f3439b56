// Deadlines and the retry of UNAVAILABLE for the calls that are safe to send twice, as the
// Python client declares them in its channel's service config (client/_channel.py).
import { errorOf, StatusCode, toWorkflowStateError, WorkflowStateError } from "./errors.js";
import type { CallOptions } from "./types.js";

/**
 * Only RPCs that are safe to send twice: a retry can follow a request the server executed but
 * whose reply was lost. Reads; status changes (setting the current status again is a no-op);
 * CreateRun (the client always sends a request id). Not InsertStepState or CreateRetryAttempt
 * (a repeat is ALREADY_EXISTS / FAILED_PRECONDITION), nor deletes, bulk cancels or streams.
 */
export const RETRYABLE_METHODS: ReadonlySet<string> = new Set([
  "CreateRun",
  "GetRun",
  "GetRunHistory",
  "UpdateRunStatus",
  "GetStepState",
  "SetStepScheduled",
  "SetStepRunning",
  "SetStepResult",
  "SetStepError",
  "GetLease",
  "ListRuns",
  "ListSteps",
  "ListWorkflows",
  "CancelRun",
  "ListLeases",
  "SetRetentionPolicy",
  "ListRetentionPolicies",
  "ListWorkers",
  // Engine state: the same status, child, branch or version status again is a no-op; a state
  // variable set again gets the same value; an upsert returns the version the first attempt
  // made. The rest are reads. Not ClaimStep: a repeat would answer claimed false.
  "SetStepSuspended",
  "SetStepChildRun",
  "SetStepBranch",
  "UpdateRunState",
  "GetRunState",
  "UpsertWorkflowVersion",
  "GetWorkflowVersion",
  "UpdateWorkflowVersionStatus",
  "ListStalledRuns",
  "ListUndispatchedSteps",
  // A repeated create of the same schedule returns it; pausing or resuming again is a no-op; a
  // repeated set of dispatch defaults sets the same again. Not DeleteSchedule or
  // DeleteDispatchDefaults: a repeat after a lost reply is NOT_FOUND.
  "CreateSchedule",
  "ListSchedules",
  "PauseSchedule",
  "ResumeSchedule",
  "SetDispatchDefaults",
  "ListDispatchDefaults",
]);

const MAX_ATTEMPTS = 5;
const INITIAL_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

export interface Attempt {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Runs `send` with the call's deadline (options.timeoutMs, else the client's default; 0 for
 * none), again on UNAVAILABLE when `retryable`, within that one deadline; its error as ours.
 */
export async function withDeadline<T>(
  send: (attempt: Attempt) => Promise<T>,
  options: CallOptions | undefined,
  defaultTimeoutMs: number,
  retryable: boolean,
): Promise<T> {
  const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : undefined;
  let bound = INITIAL_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    const remaining = deadline === undefined ? undefined : deadline - Date.now();
    if (remaining !== undefined && remaining <= 0) {
      throw errorOf(StatusCode.DEADLINE_EXCEEDED, `the call's deadline of ${timeoutMs} ms passed`);
    }
    try {
      return await send({ timeoutMs: remaining, signal: options?.signal });
    } catch (err) {
      const error: WorkflowStateError = toWorkflowStateError(err, options?.signal?.aborted ?? false);
      if (!retryable || error.code !== StatusCode.UNAVAILABLE || attempt >= MAX_ATTEMPTS || options?.signal?.aborted) {
        throw error;
      }
      const wait = Math.random() * bound;
      bound = Math.min(bound * 2, MAX_BACKOFF_MS);
      if (deadline !== undefined && Date.now() + wait >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
