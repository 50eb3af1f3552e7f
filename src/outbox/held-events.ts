import { sizeOf } from "./sqlite-store.ts";
import type { StoredOutboxEntry } from "./types.ts";

/**
 * Events accepted (numbered) while the database could not be written: kept in memory in sequence
 * order until it can, and delivered from here meanwhile. Bounded by bytes: past the bound the
 * oldest telemetry goes first, then the oldest state event; an event being published is never
 * dropped (its ack must find it).
 */
export class HeldEvents {
  readonly #entries = new Map<number, StoredOutboxEntry>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get count(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get oldestCreatedAtMs(): number | null {
    return this.#first()?.createdAtMs ?? null;
  }

  get firstSequence(): number | null {
    return this.#first()?.sequence ?? null;
  }

  /** Adds `entry`; returns the events dropped to stay within the bound. */
  add(entry: StoredOutboxEntry, inFlight: ReadonlySet<number>): StoredOutboxEntry[] {
    this.#entries.set(entry.sequence, entry);
    this.#bytes += sizeOf(entry);
    const dropped: StoredOutboxEntry[] = [];
    while (this.#bytes > this.#maxBytes && this.#entries.size > 1) {
      let victim: StoredOutboxEntry | undefined;
      for (const candidate of this.#entries.values()) {
        if (inFlight.has(candidate.sequence)) continue;
        victim ??= candidate;
        if (candidate.eventClass === "telemetry") {
          victim = candidate;
          break;
        }
      }
      if (!victim) break;
      this.take(victim.sequence);
      dropped.push(victim);
    }
    return dropped;
  }

  /** Removes and returns the event with this sequence, if it is held. */
  take(sequence: number): StoredOutboxEntry | undefined {
    const entry = this.#entries.get(sequence);
    if (!entry) return undefined;
    this.#entries.delete(sequence);
    this.#bytes -= sizeOf(entry);
    return entry;
  }

  /** The oldest `limit` events, oldest first. */
  first(limit: number): StoredOutboxEntry[] {
    const entries: StoredOutboxEntry[] = [];
    for (const entry of this.#entries.values()) {
      if (entries.length >= limit) break;
      entries.push(entry);
    }
    return entries;
  }

  all(): StoredOutboxEntry[] {
    return [...this.#entries.values()];
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #first(): StoredOutboxEntry | undefined {
    return this.#entries.values().next().value;
  }
}
