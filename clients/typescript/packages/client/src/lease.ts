// Leases: a Lease stream that holds one key, keeps it alive in the background every third of
// its ttl, exposes the fencing token and a fenced view of the client, and releases the key
// on release() (or at the end of an `await using` block).
import { hostname } from "node:os";
import { create } from "@bufbuild/protobuf";
import type { WorkflowStateClient } from "./client.js";
import { dateOf, durationOf, leaseLostReasonOf } from "./convert.js";
import { errorOf, StatusCode, toWorkflowStateError } from "./errors.js";
import { type LeaseRequest, LeaseRequestSchema, type LeaseResponse } from "./gen/workflowstate/v1/index.js";
import { RequestQueue } from "./queue.js";
import type { LeaseLostReason } from "./types.js";

export interface LeaseOptions {
  /** How long the lease lives without a keepalive, in ms. Default 10 000. */
  ttlMs?: number;
  /** How long to wait for a held key, in ms; 0 tries once; omitted waits as long as it takes. */
  waitTimeoutMs?: number;
  /** Names this holder for getLease(); default "<hostname>:<pid>". */
  holder?: string;
  /** Aborting it while waiting gives up (Cancelled). */
  signal?: AbortSignal;
}

/** How long release() waits for the server before ending the stream (which releases too). */
const RELEASE_TIMEOUT_MS = 5000;
const KEEPALIVES_PER_TTL = 3;

export const runLockKey = (runId: string): string => `run:${runId}`;
export const stepLockKey = (runId: string, stepName: string): string => `step:${runId}:${stepName}`;

/** A held lease. Release it: `await using lease = ...`, or `try { ... } finally { await lease.release() }`. */
export class Lease implements AsyncDisposable {
  readonly key: string;
  /** The grant's fencing token: writes passing it are refused once a newer token exists. */
  readonly fencingToken: bigint;
  /** The client, passing this lease's fencing token and key on every write. */
  readonly client: WorkflowStateClient;
  /** When the lease expires unless kept alive (the server's word, last told). */
  expireTime: Date;
  /** Why the lease was lost, once it was (undefined while held). */
  lostReason: LeaseLostReason | undefined;
  lostMessage = "";
  private readonly lostController = new AbortController();

  /** @internal */
  constructor(
    key: string,
    fencingToken: bigint,
    expireTime: Date,
    client: WorkflowStateClient,
    private readonly stream: LeaseStream,
  ) {
    this.key = key;
    this.fencingToken = fencingToken;
    this.expireTime = expireTime;
    this.client = client.withFence({ fencingToken, leaseKey: key });
  }

  /** True once the lease was lost (expired, taken over, the server shut down, the stream ended). */
  get lost(): boolean {
    return this.lostReason !== undefined;
  }

  /** Aborted when the lease is lost: pass it to work that must stop then. */
  get lostSignal(): AbortSignal {
    return this.lostController.signal;
  }

  /** @internal */
  markLost(reason: LeaseLostReason, message: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    this.lostMessage = message;
    this.lostController.abort(new Error(`lease ${this.key} lost (${reason}): ${message}`));
  }

  /** Gives the key back and ends the stream; waits at most a few seconds for the server. */
  release(): Promise<void> {
    return this.stream.release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

class LeaseStream {
  private readonly requests = new RequestQueue<LeaseRequest>();
  private readonly abort = new AbortController();
  private lease: Lease | undefined;
  private keeper: NodeJS.Timeout | undefined;
  private releasing: Promise<void> | undefined;
  private ended!: Promise<void>;
  private releasedOrEnded: () => void = () => {};
  private released = new Promise<void>((resolve) => (this.releasedOrEnded = resolve));

  constructor(
    private readonly client: WorkflowStateClient,
    private readonly ttlMs: number,
  ) {}

  async acquire(key: string, options: LeaseOptions): Promise<Lease> {
    const onAbort = () => this.abort.abort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const responses = this.client.rpc.lease(this.requests, { signal: this.abort.signal })[Symbol.asyncIterator]();
    this.requests.push(
      create(LeaseRequestSchema, {
        kind: {
          case: "acquire",
          value: {
            key,
            ttl: durationOf(this.ttlMs),
            waitTimeout: durationOf(options.waitTimeoutMs),
            holder: options.holder ?? `${hostname()}:${process.pid}`,
          },
        },
      }),
    );
    let first: IteratorResult<LeaseResponse>;
    try {
      first = await responses.next();
    } catch (err) {
      const aborted = this.abort.signal.aborted;
      this.close();
      throw toWorkflowStateError(err, aborted);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
    const kind = first.done ? undefined : first.value.kind;
    if (kind?.case !== "granted") {
      this.close();
      throw errorOf(StatusCode.UNAVAILABLE, `the Lease stream ended without a grant (${kind?.case ?? "no answer"})`);
    }
    const lease = new Lease(key, kind.value.fencingToken, dateOf(kind.value.expireTime) ?? new Date(), this.client, this);
    this.lease = lease;
    this.ended = this.read(responses);
    this.scheduleKeepAlive();
    return lease;
  }

  private async read(responses: AsyncIterator<LeaseResponse>): Promise<void> {
    const lease = this.lease!;
    try {
      for (;;) {
        const next = await responses.next();
        if (next.done) break;
        const kind = next.value.kind;
        if (kind.case === "keptAlive") {
          lease.expireTime = dateOf(kind.value.expireTime) ?? lease.expireTime;
        } else if (kind.case === "lost") {
          lease.markLost(leaseLostReasonOf(kind.value.reason), kind.value.message);
        } else if (kind.case === "released") {
          this.releasedOrEnded();
        }
      }
      if (!this.releasing) lease.markLost("stream_ended", "the server ended the Lease stream");
    } catch (err) {
      if (!this.releasing) lease.markLost("stream_ended", toWorkflowStateError(err).message);
    } finally {
      this.stopKeepAlive();
      this.releasedOrEnded();
    }
  }

  private scheduleKeepAlive(): void {
    const lease = this.lease!;
    // Also marks the lease lost by our own clock when the last expiry passes without a new one.
    this.keeper = setTimeout(() => {
      if (lease.lost || this.releasing) return;
      if (Date.now() >= lease.expireTime.getTime()) {
        lease.markLost("expired", "no keepalive answered before the lease's expiry");
        return;
      }
      this.requests.push(create(LeaseRequestSchema, { kind: { case: "keepAlive", value: {} } }));
      this.scheduleKeepAlive();
    }, Math.max(1, Math.floor(this.ttlMs / KEEPALIVES_PER_TTL)));
  }

  private stopKeepAlive(): void {
    clearTimeout(this.keeper);
  }

  release(): Promise<void> {
    this.releasing ??= this.doRelease();
    return this.releasing;
  }

  private async doRelease(): Promise<void> {
    this.stopKeepAlive();
    this.requests.push(create(LeaseRequestSchema, { kind: { case: "release", value: {} } }));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, RELEASE_TIMEOUT_MS)));
    try {
      await Promise.race([this.released, timeout]);
      // Half-close: the server ends the stream, which the reader sees.
      this.requests.end();
      await Promise.race([this.ended, timeout]);
    } finally {
      clearTimeout(timer);
      this.close();
    }
  }

  private close(): void {
    this.stopKeepAlive();
    this.requests.end();
    // A no-op once the stream ended; else ending it releases the key on the server.
    this.abort.abort();
  }
}

export async function holdLease(client: WorkflowStateClient, key: string, options: LeaseOptions): Promise<Lease> {
  const stream = new LeaseStream(client, options.ttlMs ?? 10_000);
  return stream.acquire(key, options);
}
