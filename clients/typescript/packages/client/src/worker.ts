// Worker: runs steps handed out over StreamStepTasks, one handler per rpc name. It keeps
// within its credit (credit for a task goes back only when the server answered its report),
// sends heartbeats every third of the task lease, drains gracefully on stop() or SIGTERM, and
// after a lost connection subscribes again naming the tasks it still holds, which the server
// adopts, then sends again the reports not answered yet (the attempt number fences them).
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Backoff, sleep } from "./backoff.js";
import type { WorkflowStateClient } from "./client.js";
import { dateOf, decodeJson, durationOf, encodeJson, failureToProto, msOf } from "./convert.js";
import { StatusCode, toWorkflowStateError } from "./errors.js";
import {
  type StepTask as ProtoStepTask,
  type StepTaskRefused,
  type StreamStepTasksRequest,
  StreamStepTasksRequestSchema,
  type StreamStepTasksResponse,
} from "./gen/workflowstate/v1/index.js";
import { RequestQueue } from "./queue.js";

/** One attempt of a step handed to this worker. */
export interface StepTask {
  stepId: string;
  runId: string;
  stepName: string;
  rpcName: string;
  /** The step's input. */
  data: unknown;
  attempt: number;
  /**
   * When the server declares the attempt lost unless it hears from the worker, as handed out:
   * heartbeats move it, but never past timeoutTime.
   */
  deadline: Date | undefined;
  /**
   * When the attempt times out (its step's startToCloseMs from the claim), whatever the
   * heartbeats: the server then fails it and refuses its result. undefined without a timeout.
   */
  timeoutTime: Date | undefined;
  /** Aborted when the server cancels the attempt (its run was cancelled) or the worker gives up on it. */
  signal: AbortSignal;
}

/** What a handler returns is the step's result (any JSON value); what it throws fails the attempt. */
export type StepHandler = (task: StepTask) => unknown;

/** Throw it (or a subclass) to fail the step at once, even with retries left. */
export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

export interface WorkerOptions {
  /** The most tasks handed to this worker at once, 1 to 1000. Default 1. */
  maxInFlight?: number;
  /** How long a task stays this worker's without a message from it, in ms. Default 30 000. */
  taskLeaseMs?: number;
  /** Names the worker for operators; default "<hostname>:<pid>:<random>". */
  workerId?: string;
  /** Stop on SIGTERM and SIGINT (a second signal abandons the running tasks). Default true. */
  handleSignals?: boolean;
  /** How long a stop by signal lets running handlers finish, in ms. Default 30 000. */
  stopTimeoutMs?: number;
}

const HEARTBEATS_PER_LEASE = 3;
const RESEND_AFTER_MS = 1000;
const MAX_IN_FLIGHT = 1000;
/** The codes of a stream's end after which the worker subscribes again. */
const RESUBSCRIBE = new Set<number>([StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED]);

type Key = string;
const keyOf = (stepId: string, attempt: number): Key => `${stepId}#${attempt}`;

interface Running {
  task: StepTask;
  controller: AbortController;
}

interface Report {
  stepId: string;
  attempt: number;
  request: StreamStepTasksRequest;
  reduced: boolean;
}

function request(kind: MessageInitShape<typeof StreamStepTasksRequestSchema>["kind"]): StreamStepTasksRequest {
  return create(StreamStepTasksRequestSchema, { kind });
}

export class Worker {
  readonly workerId: string;
  private readonly handlers: Map<string, StepHandler>;
  private readonly maxInFlight: number;
  private heartbeatMs: number;
  private readonly taskLeaseMs: number;
  private readonly handleSignals: boolean;
  private readonly stopTimeoutMs: number;

  private readonly running = new Map<Key, Running>();
  private readonly reports = new Map<Key, Report>();
  /** Tasks the current stream's server counts in flight: their answers give credit back. */
  private readonly onStream = new Set<Key>();
  private requests: RequestQueue<StreamStepTasksRequest> | undefined;
  private streamAbort: AbortController | undefined;
  private drained = false;
  private started = false;
  private stopping = false;
  private abandoned = false;
  private readonly stopController = new AbortController();
  private heartbeat: NodeJS.Timeout | undefined;
  private finished!: Promise<void>;
  private handlerCount = 0;
  private handlersIdle: (() => void) | undefined;

  constructor(
    private readonly client: WorkflowStateClient,
    handlers: Record<string, StepHandler>,
    options: WorkerOptions = {},
  ) {
    this.handlers = new Map(Object.entries(handlers));
    if (this.handlers.size === 0) throw new RangeError("a worker needs at least one handler");
    this.maxInFlight = options.maxInFlight ?? 1;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1 || this.maxInFlight > MAX_IN_FLIGHT) {
      throw new RangeError(`maxInFlight must be 1 to ${MAX_IN_FLIGHT}, got ${this.maxInFlight}`);
    }
    this.taskLeaseMs = options.taskLeaseMs ?? 30_000;
    if (!(this.taskLeaseMs > 0)) throw new RangeError(`taskLeaseMs must be positive, got ${this.taskLeaseMs}`);
    this.heartbeatMs = this.taskLeaseMs / HEARTBEATS_PER_LEASE;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.handleSignals = options.handleSignals ?? true;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  }

  /**
   * Takes and runs tasks until stop() (or SIGTERM/SIGINT); rejects with the client's error
   * when the server refuses the worker. UNAVAILABLE and DEADLINE_EXCEEDED make it subscribe
   * again. A worker runs once.
   */
  run(): Promise<void> {
    if (this.started) throw new Error("a Worker runs once; make a new one");
    this.started = true;
    this.finished = this.runToEnd();
    return this.finished;
  }

  /**
   * Stops taking tasks, lets the running handlers finish and report, then ends the stream.
   * True when that happened within timeoutMs; after it, the stream and the handlers still
   * running are abandoned (the server fails their attempts as lost: a step with retries left is
   * tried again after its retry delay, a step with none fails).
   */
  async stop(timeoutMs = 30_000): Promise<boolean> {
    this.askToStop();
    if (!this.started) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const first = await Promise.race([this.finished.then(() => "finished", () => "finished"), timeout]);
    clearTimeout(timer);
    if (first === "finished") return true;
    this.abandon();
    await this.finished.catch(() => undefined);
    return false;
  }

  private async runToEnd(): Promise<void> {
    let signals = 0;
    const onSignal = () => {
      signals += 1;
      if (signals === 1) void this.stop(this.stopTimeoutMs);
      else this.abandon();
    };
    if (this.handleSignals) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    try {
      await this.serve();
      if (this.handlerCount > 0) await new Promise<void>((resolve) => (this.handlersIdle = resolve));
    } finally {
      if (this.handleSignals) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      clearInterval(this.heartbeat);
      for (const { controller } of this.running.values()) controller.abort(new Error("the worker stopped"));
    }
  }

  private async serve(): Promise<void> {
    const backoff = new Backoff(undefined);
    while (!this.abandoned) {
      const requests = new RequestQueue<StreamStepTasksRequest>();
      const abort = new AbortController();
      this.requests = requests;
      this.streamAbort = abort;
      this.connect(requests);
      let error: unknown;
      try {
        const responses = this.client.rpc.streamStepTasks(requests, { signal: abort.signal });
        for await (const response of responses) {
          backoff.progress();
          this.onResponse(response);
        }
      } catch (err) {
        error = err;
      } finally {
        this.disconnect();
        requests.end();
        abort.abort();
      }
      if (this.abandoned || (this.stopping && error === undefined)) return;
      if (error !== undefined) {
        const failure = toWorkflowStateError(error, this.abandoned);
        if (!RESUBSCRIBE.has(failure.code)) throw failure;
      }
      // Reconnect: the server went away, or it lost this worker.
      await sleep(backoff.failed() ?? 0, this.stopController.signal);
      if (this.stopping && this.running.size === 0) return;
    }
  }

  // --- the stream ------------------------------------------------------------------

  private connect(requests: RequestQueue<StreamStepTasksRequest>): void {
    this.drained = false;
    this.onStream.clear();
    const held = [...new Set([...this.running.values()].map((r) => keyOf(r.task.stepId, r.task.attempt)).concat([...this.reports.keys()]))];
    const running = held.slice(0, this.maxInFlight).map((key) => {
      const [stepId, attempt] = key.split("#");
      return { stepId, attempt: Number(attempt) };
    });
    requests.push(
      request({
        case: "subscribe",
        value: {
          workerId: this.workerId,
          rpcNames: [...this.handlers.keys()],
          maxInFlight: this.maxInFlight,
          taskLease: durationOf(this.taskLeaseMs),
          running,
          bulk: false,
        },
      }),
    );
    for (const report of this.reports.values()) requests.push(report.request);
    if (this.stopping) requests.push(request({ case: "drain", value: {} }));
    this.startHeartbeats();
  }

  private disconnect(): void {
    this.requests = undefined;
    this.onStream.clear();
    clearInterval(this.heartbeat);
  }

  private send(message: StreamStepTasksRequest): void {
    this.requests?.push(message);
  }

  private startHeartbeats(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.send(request({ case: "heartbeat", value: {} })), this.heartbeatMs);
  }

  private onResponse(response: StreamStepTasksResponse): void {
    const kind = response.kind;
    switch (kind.case) {
      case "subscribed": {
        for (const adopted of kind.value.adopted) this.onStream.add(keyOf(adopted.stepId, adopted.attempt));
        const lease = msOf(kind.value.taskLease);
        if (lease !== undefined && lease > 0 && lease / HEARTBEATS_PER_LEASE !== this.heartbeatMs) {
          this.heartbeatMs = lease / HEARTBEATS_PER_LEASE;
          this.startHeartbeats();
        }
        break;
      }
      case "task":
        this.received(kind.value);
        break;
      case "tasks":
        for (const task of kind.value.tasks) this.received(task);
        break;
      case "accepted":
        this.answered(keyOf(kind.value.stepId, kind.value.attempt));
        break;
      case "refused":
        this.refused(kind.value);
        break;
      case "outcomes":
        for (const outcome of kind.value.outcomes) {
          if (outcome.kind.case === "accepted") this.answered(keyOf(outcome.kind.value.stepId, outcome.kind.value.attempt));
          else if (outcome.kind.case === "refused") this.refused(outcome.kind.value);
        }
        break;
      case "drained":
        this.drained = true;
        break;
      case "cancel": {
        const running = this.running.get(keyOf(kind.value.stepId, kind.value.attempt));
        running?.controller.abort(new Error(`cancelled: ${kind.value.reason}`));
        break;
      }
      default:
        break; // a message this client does not know yet
    }
    this.halfCloseWhenDone();
  }

  private received(proto: ProtoStepTask): void {
    const key = keyOf(proto.stepId, proto.attempt);
    const controller = new AbortController();
    const task: StepTask = {
      stepId: proto.stepId,
      runId: proto.runId,
      stepName: proto.stepName,
      rpcName: proto.rpcName,
      data: decodeJson(proto.dataJson),
      attempt: proto.attempt,
      deadline: dateOf(proto.deadline),
      timeoutTime: dateOf(proto.timeoutTime),
      signal: controller.signal,
    };
    this.running.set(key, { task, controller });
    this.onStream.add(key);
    this.handlerCount += 1;
    void this.execute(key, task).finally(() => {
      this.handlerCount -= 1;
      if (this.handlerCount === 0) this.handlersIdle?.();
      this.halfCloseWhenDone();
    });
  }

  private async execute(key: Key, task: StepTask): Promise<void> {
    const handler = this.handlers.get(task.rpcName);
    let outcome: StreamStepTasksRequest;
    try {
      if (handler === undefined) throw new NonRetryableError(`this worker has no handler for ${JSON.stringify(task.rpcName)}`);
      const result = await handler(task);
      outcome = request({
        case: "complete",
        value: { stepId: task.stepId, attempt: task.attempt, resultJson: encodeJson(result) },
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      outcome = request({
        case: "fail",
        value: {
          stepId: task.stepId,
          attempt: task.attempt,
          error: failureToProto(error),
          retryable: !(error instanceof NonRetryableError),
        },
      });
    }
    if (this.abandoned) return;
    this.running.delete(key);
    this.reports.set(key, { stepId: task.stepId, attempt: task.attempt, request: outcome, reduced: false });
    this.send(outcome);
  }

  /** The server no longer counts `key` in flight: give its credit back unless stopping. */
  private answered(key: Key): void {
    this.reports.delete(key);
    if (!this.onStream.delete(key) || this.stopping) return;
    this.send(request({ case: "credit", value: { n: 1 } }));
  }

  private refused(refused: StepTaskRefused): void {
    const key = keyOf(refused.stepId, refused.attempt);
    const report = this.reports.get(key);
    if (refused.code === StatusCode.FAILED_PRECONDITION || refused.code === StatusCode.NOT_FOUND) {
      // The attempt is over (lost, cancelled, or reported already): nothing was written.
      this.answered(key);
    } else if (refused.code === StatusCode.UNAVAILABLE && report !== undefined) {
      setTimeout(() => {
        if (this.reports.get(key) === report) this.send(report.request);
      }, RESEND_AFTER_MS);
    } else if (refused.code === StatusCode.INVALID_ARGUMENT && report !== undefined && !report.reduced) {
      // The task stays in flight on the server: fail it with what the server will store.
      const smaller = request({
        case: "fail",
        value: {
          stepId: report.stepId,
          attempt: report.attempt,
          error: { message: `the server refused the step's report: ${refused.message}`.slice(0, 1000), code: "RESULT_REFUSED" },
          retryable: false,
        },
      });
      this.reports.set(key, { ...report, request: smaller, reduced: true });
      this.send(smaller);
    } else {
      this.reports.delete(key);
    }
  }

  // --- stopping ----------------------------------------------------------------------

  private askToStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopController.abort();
    this.send(request({ case: "drain", value: {} }));
    this.halfCloseWhenDone();
  }

  /** A stopping worker whose handlers finished and whose reports were answered ends its stream. */
  private halfCloseWhenDone(): void {
    if (!this.stopping || this.running.size > 0 || this.requests === undefined) return;
    if (this.drained && this.reports.size === 0) this.requests.end();
  }

  private abandon(): void {
    this.abandoned = true;
    this.stopping = true;
    this.stopController.abort();
    this.streamAbort?.abort();
    for (const { controller } of this.running.values()) controller.abort(new Error("the worker gave up on the task"));
    this.handlersIdle?.();
    this.handlerCount = 0;
  }
}
