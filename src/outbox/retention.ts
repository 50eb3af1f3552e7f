import type { Clock, Logger } from "../runtime/index.ts";
import { EvictionLog } from "./eviction-log.ts";
import type { OutboxDatabase } from "./outbox-database.ts";
import { OutboxTally } from "./outbox-tally.ts";

interface Victim {
  readonly sequence: number;
  readonly eventClass: "telemetry" | "state";
  readonly sizeBytes: number;
}

/**
 * What the outbox keeps while events cannot leave: at most `maxBytes` (past it the oldest telemetry
 * goes first, then the oldest state event) and nothing older than `maxAgeMs`; every eviction is
 * counted and logged. An event being published or already settled is never evicted (its outcome
 * must find it). Both limits are live settings. Evictions are logged per reason at most every 30 s
 * (eviction-log.ts).
 */
export class OutboxRetention {
  readonly #database: OutboxDatabase;
  readonly #tally: OutboxTally;
  /** Whether an event is being published or settled: not to be evicted. */
  readonly #busyOrSettled: (sequence: number) => boolean;
  readonly #clock: Clock;
  readonly #log: EvictionLog;
  #maxBytes: number;
  #maxAgeMs: number;

  constructor(options: {
    database: OutboxDatabase;
    tally: OutboxTally;
    busyOrSettled: (sequence: number) => boolean;
    clock: Clock;
    logger: Logger;
    maxBytes: number;
    maxAgeMs: number;
  }) {
    this.#database = options.database;
    this.#tally = options.tally;
    this.#busyOrSettled = options.busyOrSettled;
    this.#clock = options.clock;
    this.#log = new EvictionLog(options.clock, options.logger);
    this.#maxBytes = options.maxBytes;
    this.#maxAgeMs = options.maxAgeMs;
  }

  /** Frees room for `incoming` bytes: oldest telemetry first, then oldest state events. Throws the database's errors. */
  makeRoom(incoming: number): void {
    const store = this.#database.store;
    if (!store) return;
    const tally = this.#tally;
    for (const eventClass of ["telemetry", "state"] as const) {
      while (tally.pendingBytes + incoming > this.#maxBytes) {
        const candidates = store.oldestOfClass(eventClass, 256).filter((row) => !this.#busyOrSettled(row.sequence));
        if (candidates.length === 0) break;
        const victims: Victim[] = [];
        let freed = 0;
        for (const row of candidates) {
          if (tally.pendingBytes - freed + incoming <= this.#maxBytes) break;
          victims.push({ ...row, eventClass });
          freed += row.sizeBytes;
        }
        this.#evict(victims, "outbox full");
      }
    }
  }

  /** Evicts what is older than the maximum age; a database fault is recorded, never thrown. */
  sweepExpired(): void {
    const store = this.#database.store;
    if (!store) return;
    try {
      for (;;) {
        const expired = store
          .expiredBefore(this.#clock.now() - this.#maxAgeMs)
          .filter((row) => !this.#busyOrSettled(row.sequence));
        if (expired.length === 0) return;
        this.#evict(expired, "older than the outbox's maximum age");
      }
    } catch (error) {
      this.#database.fail("outbox cannot evict expired events", error);
    }
  }

  /** New limits, applied at once. */
  updateLimits(limits: { maxBytes?: number | undefined; maxAgeMs?: number | undefined }): void {
    if (limits.maxBytes !== undefined) this.#maxBytes = limits.maxBytes;
    if (limits.maxAgeMs !== undefined) this.#maxAgeMs = limits.maxAgeMs;
    if (this.#database.store) {
      try {
        this.makeRoom(0);
      } catch (error) {
        this.#database.fail("outbox cannot evict to the new limit", error);
      }
    }
    this.sweepExpired();
  }

  #evict(victims: readonly Victim[], why: string): void {
    const store = this.#database.store;
    if (!store || victims.length === 0) return;
    const tally = this.#tally;
    const next = { ...tally.counters };
    for (const victim of victims) next[OutboxTally.evictedCounter(victim.eventClass)] += 1;
    store.evict(
      victims.map((victim) => victim.sequence),
      next,
    );
    tally.counters.evicted_telemetry = next.evicted_telemetry;
    tally.counters.evicted_state = next.evicted_state;
    tally.left(
      victims.length,
      victims.reduce((sum, victim) => sum + victim.sizeBytes, 0),
    );
    this.#log.evicted(
      why,
      victims.map((victim) => victim.sequence),
    );
  }

  /** Says the evictions not yet logged (the outbox stops). */
  flushLog(): void {
    this.#log.flush();
  }
}
