// Exponential backoff with full jitter between the tries of a stream, giving up after a while
// without progress (the Python client's _reconnect.Backoff).

export class Backoff {
  private bound: number;
  private failingSince: number | undefined;

  constructor(
    private readonly giveUpAfterMs: number | undefined,
    private readonly initialMs = 100,
    private readonly maxMs = 5000,
  ) {
    this.bound = initialMs;
  }

  /** The stream works: the next failure starts from the initial backoff again. */
  progress(): void {
    this.bound = this.initialMs;
    this.failingSince = undefined;
  }

  /** A try failed: the ms to wait before the next, or undefined to give up. */
  failed(): number | undefined {
    const now = Date.now();
    this.failingSince ??= now;
    if (this.giveUpAfterMs !== undefined && now - this.failingSince >= this.giveUpAfterMs) return undefined;
    let delay = Math.random() * this.bound;
    this.bound = Math.min(this.bound * 2, this.maxMs);
    if (this.giveUpAfterMs !== undefined) delay = Math.min(delay, this.failingSince + this.giveUpAfterMs - now);
    return Math.max(0, delay);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
