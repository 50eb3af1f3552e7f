import { type Cancel, type Clock, type Logger, timersOf } from "../runtime/index.ts";

/** How often, at most, one reason for evicting gets a line of its own. */
export const EVICTION_LOG_INTERVAL_MS = 30_000;

interface Held {
  evicted: number;
  firstSequence: number;
  lastSequence: number;
}

/**
 * The outbox's eviction lines, at most one per reason every `EVICTION_LOG_INTERVAL_MS`: a full
 * outbox under a flood evicts at every append (a task's output, a long outage's telemetry), which
 * was one warning per event. The first eviction is said at once; what follows within the interval
 * is added up and said in one line when it ends, so every evicted event is in some line (the
 * counters in status are the running totals).
 */
export class EvictionLog {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #lastLineMs = new Map<string, number>();
  readonly #held = new Map<string, Held>();
  readonly #flushes = new Map<string, Cancel>();

  constructor(clock: Clock, logger: Logger) {
    this.#clock = clock;
    this.#logger = logger;
  }

  /** `sequences` were evicted for `why`. */
  evicted(why: string, sequences: readonly number[]): void {
    if (sequences.length === 0) return;
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const sequence of sequences) {
      first = Math.min(first, sequence);
      last = Math.max(last, sequence);
    }
    const held = this.#held.get(why);
    if (held) {
      held.evicted += sequences.length;
      held.firstSequence = Math.min(held.firstSequence, first);
      held.lastSequence = Math.max(held.lastSequence, last);
    } else {
      this.#held.set(why, { evicted: sequences.length, firstSequence: first, lastSequence: last });
    }
    const lastLineMs = this.#lastLineMs.get(why);
    const now = this.#clock.monotonicMs();
    if (lastLineMs === undefined || now - lastLineMs >= EVICTION_LOG_INTERVAL_MS) {
      this.#say(why);
      return;
    }
    if (!this.#flushes.has(why)) {
      const cancel = timersOf(this.#clock).after(EVICTION_LOG_INTERVAL_MS - (now - lastLineMs), () => {
        this.#flushes.delete(why);
        this.#say(why);
      });
      this.#flushes.set(why, cancel);
    }
  }

  /** Says what is held back now (the outbox closes). */
  flush(): void {
    for (const cancel of this.#flushes.values()) cancel();
    this.#flushes.clear();
    for (const why of [...this.#held.keys()]) this.#say(why);
  }

  #say(why: string): void {
    const held = this.#held.get(why);
    if (!held) return;
    this.#held.delete(why);
    this.#lastLineMs.set(why, this.#clock.monotonicMs());
    this.#logger.warn(
      { evicted: held.evicted, why, firstSequence: held.firstSequence, lastSequence: held.lastSequence },
      "outbox evicted events",
    );
  }
}
