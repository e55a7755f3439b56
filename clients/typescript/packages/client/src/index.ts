// @workflowstate/client: the TypeScript client of workflowstate.
export { WorkflowStateClient } from "./client.js";
export type {
  ClientOptions,
  CreateRunOptions,
  CreateScheduleOptions,
  InsertStepOptions,
  ListRunsOptions,
  RunFilter,
  SetDispatchDefaultsOptions,
  SetStepScheduledOptions,
  WatchOptions,
} from "./client.js";
export type { ConnectionOptions, TlsOptions } from "./connection.js";
export { isLoopbackAddress } from "./connection.js";
export type { FailureInput } from "./convert.js";
export {
  Aborted,
  AlreadyExists,
  Cancelled,
  DeadlineExceeded,
  FailedPrecondition,
  Internal,
  InvalidArgument,
  NotFound,
  PermissionDenied,
  ResourceExhausted,
  StatusCode,
  Unauthenticated,
  Unavailable,
  WorkflowStateError,
} from "./errors.js";
export type { Reason } from "./errors.js";
export { Lease, runLockKey, stepLockKey } from "./lease.js";
export type { LeaseOptions } from "./lease.js";
export { NonRetryableError, Worker } from "./worker.js";
export type { StepHandler, StepTask, WorkerOptions } from "./worker.js";
export type * from "./types.js";
