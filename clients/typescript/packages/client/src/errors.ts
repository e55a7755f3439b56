// The errors of the client: one class per gRPC status code the server answers with, all
// subclasses of WorkflowStateError, so callers catch by meaning (`err instanceof NotFound`)
// or by code (`err.code === StatusCode.NOT_FOUND`).
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** The gRPC status codes, by their gRPC names (the numbers are gRPC's). */
export const StatusCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type StatusCode = (typeof StatusCode)[keyof typeof StatusCode];

const NAMES = new Map<number, string>(Object.entries(StatusCode).map(([name, code]) => [code, name]));

/** The reason a refusal names for programs, and its context, from the server's status details. */
export interface Reason {
  reason: string;
  metadata: Record<string, string>;
}

/**
 * Any failure answered by the server (or by gRPC on its way): `code` is the gRPC status code,
 * `reason` the refusal's name (match on it, never on the message, which is for people).
 */
export class WorkflowStateError extends Error {
  /** The gRPC status code, e.g. StatusCode.NOT_FOUND (5). */
  readonly code: StatusCode;
  /** The code's gRPC name, e.g. "NOT_FOUND". */
  readonly codeName: string;
  /**
   * The refusal's name, e.g. "STALE_FENCE" or "FINISHED_RUN" (the README's error table lists every
   * one); undefined when the server sent none (an operation of a Batch, a failed connection).
   */
  readonly reason: string | undefined;
  /** The refusal's context, e.g. current_token, prior_status or field: all strings; empty without a reason. */
  readonly metadata: Readonly<Record<string, string>>;

  constructor(code: StatusCode, message: string, options?: { cause?: unknown; reason?: Reason }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.codeName = NAMES.get(code) ?? "UNKNOWN";
    this.reason = options?.reason?.reason;
    this.metadata = { ...options?.reason?.metadata };
    this.name = new.target.name;
  }
}

export class Cancelled extends WorkflowStateError {}
export class InvalidArgument extends WorkflowStateError {}
export class DeadlineExceeded extends WorkflowStateError {}
export class NotFound extends WorkflowStateError {}
export class AlreadyExists extends WorkflowStateError {}
export class PermissionDenied extends WorkflowStateError {}
export class ResourceExhausted extends WorkflowStateError {}
export class FailedPrecondition extends WorkflowStateError {}
export class Aborted extends WorkflowStateError {}
export class Internal extends WorkflowStateError {}
export class Unavailable extends WorkflowStateError {}
export class Unauthenticated extends WorkflowStateError {}

type ErrorClass = new (code: StatusCode, message: string, options?: { cause?: unknown; reason?: Reason }) => WorkflowStateError;

const CLASSES = new Map<number, ErrorClass>([
  [StatusCode.CANCELLED, Cancelled],
  [StatusCode.INVALID_ARGUMENT, InvalidArgument],
  [StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded],
  [StatusCode.NOT_FOUND, NotFound],
  [StatusCode.ALREADY_EXISTS, AlreadyExists],
  [StatusCode.PERMISSION_DENIED, PermissionDenied],
  [StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted],
  [StatusCode.FAILED_PRECONDITION, FailedPrecondition],
  [StatusCode.ABORTED, Aborted],
  [StatusCode.INTERNAL, Internal],
  [StatusCode.UNAVAILABLE, Unavailable],
  [StatusCode.UNAUTHENTICATED, Unauthenticated],
]);

/** The client's error for a status code and message (a plain WorkflowStateError for other codes). */
export function errorOf(code: number, message: string, cause?: unknown, reason?: Reason): WorkflowStateError {
  const Class = CLASSES.get(code) ?? WorkflowStateError;
  return new Class(code as StatusCode, message, { cause, reason });
}

/**
 * The client's error for whatever a call threw: connect's errors become ours, ours stay.
 *
 * A connection that failed is UNAVAILABLE, as gRPC says it (worth a retry or a reconnect):
 * connect reports a stream reset under a call as CANCELLED, a reset socket as ABORTED and a
 * failed TLS handshake as INTERNAL, each carrying Node's own error as its cause, where the
 * server's answers carry none. `aborted` says whether the caller cancelled the call: then it
 * stays CANCELLED. (The server itself never answers CANCELLED.)
 */
export function toWorkflowStateError(err: unknown, aborted = false): WorkflowStateError {
  if (err instanceof WorkflowStateError) return err;
  const connect = ConnectError.from(err);
  if (!aborted && (connect.code === Code.Canceled || (CONNECTION_CODES.has(connect.code) && hasNodeCause(connect)))) {
    return errorOf(StatusCode.UNAVAILABLE, `the connection failed: ${connect.rawMessage}`, err);
  }
  // connect's Code numbers are gRPC's.
  return errorOf(connect.code, connect.rawMessage, err, reasonOf(connect));
}

/** The ErrorInfo domain of the server's reasons. */
const DOMAIN = "workflowstate";

/**
 * The server's google.rpc.ErrorInfo among the details connect read from grpc-status-details-bin.
 * Decoded by hand (reason = 1, domain = 2, metadata = 3, a map of strings): the client ships no
 * generated google.rpc types for one small message.
 */
function reasonOf(error: ConnectError): Reason | undefined {
  for (const detail of error.details) {
    if (!("type" in detail) || detail.type !== "google.rpc.ErrorInfo") continue;
    const info = { reason: "", domain: "", metadata: {} as Record<string, string> };
    const reader = new BinaryReader(detail.value);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1) info.reason = reader.string();
      else if (field === 2) info.domain = reader.string();
      else if (field === 3) {
        const entry = new BinaryReader(reader.bytes());
        let key = "";
        let value = "";
        while (entry.pos < entry.len) {
          const [entryField, entryWireType] = entry.tag();
          if (entryField === 1) key = entry.string();
          else if (entryField === 2) value = entry.string();
          else entry.skip(entryWireType, entryField);
        }
        info.metadata[key] = value;
      } else reader.skip(wireType, field);
    }
    if (info.domain === DOMAIN) return { reason: info.reason, metadata: info.metadata };
  }
  return undefined;
}

/** The codes connect gives to failures of the connection itself. */
const CONNECTION_CODES = new Set<number>([Code.Aborted, Code.Internal, Code.Unknown, Code.Unavailable]);

/** Whether a Node system or TLS error (it has a string code, e.g. ECONNRESET) caused it. */
function hasNodeCause(error: Error): boolean {
  const seen = new Set<unknown>();
  for (let cause: unknown = error.cause; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause);
    if (typeof (cause as { code?: unknown }).code === "string") return true;
  }
  return false;
}
