import type { StoredOutboxEntry } from "./types.ts";

export interface Rejection {
  readonly entry: StoredOutboxEntry;
  readonly reason: string;
  readonly failedAtMs: number;
}

/**
 * What JetStream said about stored events that the database has not taken yet, because it could
 * not be written (a full disk): acked events still to delete, refused ones still to move to dead
 * letters. Delivery never waits for the disk: an event in here is settled, never published again
 * by this process, and the database is told when it can be written.
 */
export class SettleBacklog {
  readonly #delivered = new Set<number>();
  readonly #rejected = new Map<number, Rejection>();

  get size(): number {
    return this.#delivered.size + this.#rejected.size;
  }

  has(sequence: number): boolean {
    return this.#delivered.has(sequence) || this.#rejected.has(sequence);
  }

  addDelivered(sequence: number): void {
    this.#delivered.add(sequence);
  }

  addRejected(rejection: Rejection): void {
    this.#rejected.set(rejection.entry.sequence, rejection);
  }

  delivered(): number[] {
    return [...this.#delivered];
  }

  rejected(): Rejection[] {
    return [...this.#rejected.values()];
  }

  /** The lowest refused sequence not yet a dead letter: it is published again after a restart. */
  lowestRejected(): number | null {
    let lowest: number | null = null;
    for (const sequence of this.#rejected.keys()) lowest = lowest === null ? sequence : Math.min(lowest, sequence);
    return lowest;
  }

  clear(): void {
    this.#delivered.clear();
    this.#rejected.clear();
  }
}
