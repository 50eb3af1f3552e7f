import { type Cancel, type Clock, type Timers, timersOf } from "../runtime/index.ts";

/** Defaults for every download: a link that goes quiet, or crawls on forever, is given up on. */
export const DEFAULT_STALL_TIMEOUT_MS = 30_000;
export const DEFAULT_DOWNLOAD_DEADLINE_MS = 10 * 60_000;

export type WatchdogTrip = "stalled" | "deadline" | "aborted";

/**
 * One signal for a transfer that aborts when no byte arrives for `stallMs` (the wait for the
 * response counts: a server that accepts and says nothing is stalled too), when the whole transfer
 * passes `deadlineMs`, or when the caller's own `signal` aborts (the agent is stopping).
 * `progress()` is called for every chunk; `dispose()` clears the timers. Both run on `clock`'s timers.
 */
export class TransferWatchdog {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #stallMs: number;
  readonly #timers: Timers;
  #cancelStall: Cancel = () => undefined;
  readonly #cancelDeadline: Cancel;
  readonly #onCallerAbort: () => void;
  readonly #callerSignal: AbortSignal | undefined;
  #trip: WatchdogTrip | null = null;

  constructor(options: { clock: Clock; stallMs: number; deadlineMs: number; signal?: AbortSignal | undefined }) {
    this.signal = this.#controller.signal;
    this.#stallMs = options.stallMs;
    this.#timers = timersOf(options.clock);
    this.#callerSignal = options.signal;
    this.#onCallerAbort = () => this.#abort("aborted");
    this.#cancelDeadline = this.#timers.after(options.deadlineMs, () => this.#abort("deadline"));
    if (options.signal?.aborted) this.#abort("aborted");
    else options.signal?.addEventListener("abort", this.#onCallerAbort, { once: true });
    this.progress();
  }

  /** Why the transfer was aborted, or null while it runs. */
  get trip(): WatchdogTrip | null {
    return this.#trip;
  }

  progress(): void {
    if (this.#trip) return;
    this.#cancelStall();
    this.#cancelStall = this.#timers.after(this.#stallMs, () => this.#abort("stalled"));
  }

  dispose(): void {
    this.#cancelStall();
    this.#cancelDeadline();
    this.#callerSignal?.removeEventListener("abort", this.#onCallerAbort);
  }

  #abort(trip: WatchdogTrip): void {
    if (this.#trip) return;
    this.#trip = trip;
    this.dispose();
    this.#controller.abort(new Error(`download ${trip}`));
  }
}

/**
 * The chunks of a web stream, given up at once when `signal` aborts, whether or not the stream
 * itself listens to it (an object store's does not).
 */
export async function* chunksUntilAborted(
  stream: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) return;
      yield value;
    }
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
    await reader.cancel().catch(() => undefined);
  }
}
