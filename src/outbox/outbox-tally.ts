import { COUNTERS, type CounterName, type OutboxStore, sizeOf } from "./sqlite-store.ts";
import type { StoredOutboxEntry } from "./types.ts";

/**
 * What the outbox counts, in memory: its counters (kept in the database too, with what the
 * database has not been told yet), and the stored events not settled yet.
 */
export class OutboxTally {
  readonly counters: Record<CounterName, number> = {
    last_sequence: 0,
    delivered: 0,
    evicted_telemetry: 0,
    evicted_state: 0,
    dead_letters: 0,
  };
  /** Counters moved in memory that the database has not been told yet. */
  countersDirty = false;
  /** Stored events not settled yet (the settle backlog's are settled). */
  pendingCount = 0;
  pendingBytes = 0;

  /** The database was (re)opened: its counters (never below what this run counted), and what it holds. */
  opened(store: OutboxStore): void {
    const stored = store.readCounters();
    for (const name of COUNTERS) this.counters[name] = Math.max(this.counters[name], stored[name]);
    const totals = store.pendingTotals();
    this.pendingCount = totals.count;
    this.pendingBytes = totals.bytes;
  }

  /** `entries` are in the database now. */
  stored(entries: readonly StoredOutboxEntry[]): void {
    this.pendingCount += entries.length;
    this.pendingBytes += entries.reduce((sum, entry) => sum + sizeOf(entry), 0);
  }

  /** Stored events left (settled or evicted). */
  left(count: number, bytes: number): void {
    this.pendingCount -= count;
    this.pendingBytes -= bytes;
  }

  /** The counter an event of this class counts under when it is evicted. */
  static evictedCounter(eventClass: "telemetry" | "state"): CounterName {
    return eventClass === "telemetry" ? "evicted_telemetry" : "evicted_state";
  }
}
