// watchRun and streamRunEvents: an async iterator over a stream of events that opens the
// stream again after the last event received when the server goes away, so a reader sees
// every event once.
import { Backoff, sleep } from "./backoff.js";
import { toWorkflowStateError, StatusCode } from "./errors.js";
import { eventOf } from "./convert.js";
import type { RunEvent as ProtoRunEvent } from "./gen/workflowstate/v1/index.js";
import type { RunEvent } from "./types.js";

type Open = (afterEventId: bigint, signal: AbortSignal) => AsyncIterable<{ event?: ProtoRunEvent }>;

export async function* followEvents(
  open: Open,
  options: { afterEventId?: bigint; reconnectTimeoutMs?: number; signal?: AbortSignal },
  endsWithRun: boolean,
): AsyncGenerator<RunEvent> {
  let after = options.afterEventId ?? 0n;
  const timeout = options.reconnectTimeoutMs ?? 60_000;
  const backoff = new Backoff(timeout > 0 ? timeout : undefined);
  // Aborted when the caller stops iterating (return()) or aborts its signal: ends the stream.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    while (!stop.signal.aborted) {
      try {
        for await (const response of open(after, stop.signal)) {
          backoff.progress();
          const event = eventOf(response.event);
          after = event.eventId;
          yield event;
        }
        // WatchRun ends after the event that finishes the run; StreamRunEvents never ends by
        // itself, so its end (a server going away cleanly) is followed by a new stream.
        if (endsWithRun) return;
        backoff.progress();
      } catch (err) {
        if (stop.signal.aborted) return;
        const error = toWorkflowStateError(err, stop.signal.aborted);
        if (error.code !== StatusCode.UNAVAILABLE) throw error;
        const delay = backoff.failed();
        if (delay === undefined) throw error;
        await sleep(delay, stop.signal);
      }
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    stop.abort();
  }
}
