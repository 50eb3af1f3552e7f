/**
 * Lets a repeated log line through at most once per `intervalMs`, and says how many were held
 * back since the last one: a problem that lasts days is a line every half minute, not thousands,
 * and never silence.
 */
export interface LogThrottle {
  /** Whether to log this occurrence now, and how many occurrences were held back before it. */
  take(): { readonly log: boolean; readonly suppressed: number };
  /** The problem changed or ended: the next occurrence is logged at once. */
  reset(): void;
}

export function createLogThrottle(options: { readonly intervalMs: number; readonly nowMs: () => number }): LogThrottle {
  let lastLoggedMs: number | null = null;
  let suppressed = 0;
  return {
    take() {
      const now = options.nowMs();
      if (lastLoggedMs !== null && now - lastLoggedMs < options.intervalMs) {
        suppressed += 1;
        return { log: false, suppressed };
      }
      const held = suppressed;
      lastLoggedMs = now;
      suppressed = 0;
      return { log: true, suppressed: held };
    },
    reset() {
      lastLoggedMs = null;
      suppressed = 0;
    },
  };
}
