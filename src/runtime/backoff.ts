/**
 * Reconnect delay: exponential with full jitter, capped. A fleet that loses its server all at
 * once then spreads its reconnects over the whole window instead of stampeding back together.
 *
 * nats.js asks `reconnectDelayHandler` on every turn of its dial loop, not once per dial, so the
 * delay must not advance on that call: it advances on `reconnectToServer`, which nats.js calls
 * exactly once before each dial. `delay()` answers the same value until the next dial.
 */
export interface ReconnectBackoff {
  /** The wait before the next dial (stable between dials). */
  delay(): number;
  /** A dial is about to happen: the wait after it grows. */
  dialing(): void;
  /** Connected: start small again. */
  reset(): void;
}

export function jitteredBackoff(options: {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}): ReconnectBackoff & { next(): number } {
  let attempt = 0;
  const random = options.random ?? Math.random;
  const draw = (): number => {
    const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 20));
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
  };
  let current = draw();
  return {
    /** Draws the delay for this attempt and moves to the next (for loops that sleep once per try). */
    next() {
      const value = draw();
      attempt += 1;
      current = draw();
      return value;
    },
    delay: () => current,
    dialing() {
      attempt += 1;
      current = draw();
    },
    reset() {
      attempt = 0;
      current = draw();
    },
  };
}

/** The longest a command waits before it is delivered again after a failure it may get over. */
export const MAX_RETRY_DELAY_MS = 5 * 60_000;

/**
 * How long a command that failed on its `deliveryCount`-th delivery waits before the next one:
 * 5 s doubling per delivery, at most five minutes. A download that keeps failing then costs the
 * platform a message every few minutes, not a storm.
 */
export function retryDelayMs(deliveryCount: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, 5_000 * 2 ** Math.min(10, Math.max(0, deliveryCount - 1)));
}
