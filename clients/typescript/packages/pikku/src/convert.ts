// Between the client's records and Pikku's: ids and field names, "" <-> undefined/null,
// retry delays as strings of milliseconds, failures as Pikku's SerializedError.
import { parseDurationString, type SerializedError } from "@pikku/core";
import type { StepState as PikkuStep, WorkflowRun } from "@pikku/core/workflow";
import type { Failure, FailureInput, Run, StepAttempt, StepState } from "@workflowstate/client";

/** Pikku's retryDelay (ms as a number or digits, or a duration like "5s") in milliseconds. */
export function retryDelayMs(delay: string | number | undefined): number | undefined {
  if (delay === undefined || delay === null || delay === "") return undefined;
  if (typeof delay === "number") return delay;
  return /^\d+$/.test(delay) ? Number(delay) : parseDurationString(delay);
}

export function serializedErrorOf(failure: Failure | undefined): SerializedError | undefined {
  if (failure === undefined) return undefined;
  const error: SerializedError = { message: failure.message };
  if (failure.stack) error.stack = failure.stack;
  if (failure.code) error.code = failure.code;
  return error;
}

/** What Pikku stores of an error: its message, stack and code (as the kysely backend does). */
export function failureOf(error: Error | SerializedError): FailureInput {
  const code = (error as { code?: unknown }).code;
  return { message: error.message ?? "", stack: error.stack ?? "", code: typeof code === "string" ? code : "" };
}

export function pikkuRunOf(run: Run): WorkflowRun {
  return {
    id: run.runId,
    workflow: run.workflow,
    status: run.status,
    input: run.input,
    output: run.output,
    error: serializedErrorOf(run.error),
    inline: run.inline,
    graphHash: run.graphHash || undefined,
    deterministic: run.deterministic,
    plannedSteps: run.plannedSteps.map((p) => (p.displayName ? p : { stepName: p.stepName })),
    wire: (run.metadata ?? {}) as WorkflowRun["wire"],
    createdAt: run.createTime,
    updatedAt: run.updateTime,
  };
}

export function pikkuStepOf(step: StepState): PikkuStep & { stepName: string; data?: unknown } {
  return {
    stepId: step.stepId,
    stepName: step.stepName,
    status: step.status,
    rpcName: step.rpcName === "" ? null : step.rpcName,
    data: step.data,
    result: step.result,
    error: serializedErrorOf(step.error),
    attemptCount: step.attemptCount,
    retries: step.retries,
    retryDelay: step.retryDelayMs === undefined ? undefined : String(step.retryDelayMs),
    fromStepName: step.fromStepName || undefined,
    childRunId: step.childRunId || undefined,
    createdAt: step.createTime,
    updatedAt: step.updateTime,
    scheduledAt: step.scheduledTime,
    runningAt: step.runningTime,
    succeededAt: step.succeededTime,
    failedAt: step.failedTime,
  };
}

/** One attempt of the run's history, with what the step says of retries and its origin. */
export function pikkuAttemptOf(attempt: StepAttempt, step: StepState | undefined): PikkuStep & { stepName: string } {
  return {
    stepId: attempt.stepId,
    stepName: attempt.stepName,
    status: attempt.status,
    rpcName: step === undefined || step.rpcName === "" ? null : step.rpcName,
    result: attempt.result,
    error: serializedErrorOf(attempt.error),
    attemptCount: attempt.attempt,
    retries: step?.retries,
    retryDelay: step?.retryDelayMs === undefined ? undefined : String(step.retryDelayMs),
    fromStepName: step?.fromStepName || undefined,
    createdAt: attempt.createTime,
    updatedAt: attempt.updateTime,
    scheduledAt: attempt.scheduledTime,
    runningAt: attempt.runningTime,
    succeededAt: attempt.succeededTime,
    failedAt: attempt.failedTime,
  };
}
