// Deadlines and the retry of UNAVAILABLE for the calls that are safe to send twice, as the
// Python client declares them in its channel's service config (client/_channel.py).
import { errorOf, StatusCode, toWorkflowStateError, WorkflowStateError } from "./errors.js";
import type { CallOptions } from "./types.js";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { WorkflowStateService } from "./gen/workflowstate/v1/index.js";

/**
 * Only RPCs that are safe to send twice: a retry can follow a request the server executed but
 * whose reply was lost. Which ones are is written once, in the contract: each RPC's standard
 * `idempotency_level` option (NO_SIDE_EFFECTS for reads, IDEMPOTENT for writes whose repeat
 * answers as the first attempt did, each with its reason beside it in the proto), read here from
 * the generated descriptors as the Python client reads it. Streams are never retried: their
 * callers resume them.
 */
export const RETRYABLE_METHODS: ReadonlySet<string> = new Set(
  WorkflowStateService.methods
    .filter(
      (method) =>
        method.methodKind === "unary" && method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
    )
    .map((method) => method.name),
);

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
