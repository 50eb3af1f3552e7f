import type { Clock, Logger, Timers } from "../runtime/index.ts";
import { type Drainer, type DrainSource, startDrainer } from "./drainer.ts";
import type { HeldEvents } from "./held-events.ts";
import type { OutboxDatabase } from "./outbox-database.ts";
import type { OutboxTally } from "./outbox-tally.ts";
import type { EventPublisher } from "./publisher.ts";
import { SettleBacklog } from "./settle-backlog.ts";
import { type OutboxStore, sizeOf } from "./sqlite-store.ts";
import type { StoredOutboxEntry } from "./types.ts";

export interface OutboxDeliveryOptions {
  readonly database: OutboxDatabase;
  readonly tally: OutboxTally;
  /** Events accepted while the database could not take them: delivered from memory meanwhile. */
  readonly held: HeldEvents;
  /** How far the last run saw every event settled (sequence-floor.ts). */
  readonly settledByLastRun: () => number;
  /** Where how far everything was settled is noted when the database cannot be told (sequence-floor.ts). */
  readonly recordSettled: (sequence: number) => void;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly batchSize: number;
  readonly maxInFlight: number;
}

/**
 * The outbox's side of delivery (drainer.ts publishes): which events go out next (stored ones not
 * settled, oldest first, then held ones), and what JetStream said of each. An acked event is
 * settled at once, in memory, whether or not the database can delete it now: it is never
 * published again. The deletion is retried; until it succeeds, the sequence floor keeps how far
 * everything was settled, so a kill -9 meanwhile does not send those events again either.
 */
export class OutboxDelivery implements DrainSource {
  readonly #options: OutboxDeliveryOptions;
  /** What JetStream said that the database has not taken yet. */
  readonly #backlog = new SettleBacklog();
  readonly #inFlight = new Set<number>();
  /** Every stored event up to this sequence is settled: the search for the next batch starts after it. */
  #scanFrom = 0;
  #drainer: Drainer | null = null;

  constructor(options: OutboxDeliveryOptions) {
    this.#options = options;
  }

  /** Events being published now (an event held in memory among them is never dropped). */
  get inFlight(): ReadonlySet<number> {
    return this.#inFlight;
  }

  /** Settled events the database has not been told of yet. */
  get backlogSize(): number {
    return this.#backlog.size;
  }

  /** Why events wait instead of going out, until they go out again. */
  get retryReason(): string | null {
    return this.#drainer?.retryReason ?? null;
  }

  busyOrSettled(sequence: number): boolean {
    return this.#inFlight.has(sequence) || this.#backlog.has(sequence);
  }

  /** A database was (re)opened: searched from its start; what the last run saw settled is settled now. */
  opened(store: OutboxStore): void {
    this.#scanFrom = 0;
    const settledThrough = this.#options.settledByLastRun();
    if (settledThrough === 0) return;
    const rows = store.sequencesThrough(settledThrough);
    for (const row of rows) {
      this.#backlog.addDelivered(row.sequence);
      this.#options.tally.left(1, row.sizeBytes);
    }
    this.#options.tally.counters.delivered += rows.length;
    this.#options.tally.countersDirty ||= rows.length > 0;
  }

  /** Starts publishing through `publisher` (once). */
  start(publisher: EventPublisher, outboxId: string): void {
    if (this.#drainer) return;
    const { logger, batchSize, maxInFlight, timers } = this.#options;
    this.#drainer = startDrainer({ source: this, publisher, logger, batchSize, maxInFlight, timers, outboxId });
  }

  /** New events are waiting. */
  notify(): void {
    this.#drainer?.notify();
  }

  /** The link is down: publish nothing until `wake` (drainer.ts says why). */
  hold(): void {
    this.#drainer?.hold();
  }

  /** The link is back: retry now (ends a hold). */
  wake(): void {
    this.#drainer?.wake();
  }

  /** In-flight publishes settle first. */
  async stop(): Promise<void> {
    await this.#drainer?.stop();
    this.#drainer = null;
  }

  nextBatch(limit: number): StoredOutboxEntry[] {
    const store = this.#options.database.store;
    const batch = store ? this.#unsettledStored(store, limit) : [];
    // Held events are newer than every stored one: they follow, and go out while the disk is full.
    if (batch.length < limit) batch.push(...this.#options.held.first(limit - batch.length));
    for (const entry of batch) this.#inFlight.add(entry.sequence);
    return batch;
  }

  settle(
    delivered: readonly StoredOutboxEntry[],
    rejected: ReadonlyArray<{ entry: StoredOutboxEntry; reason: string }>,
  ): void {
    const { held, tally, clock } = this.#options;
    try {
      // A batch retried whole: nothing to record, but it is no longer in flight (evictable again).
      if (delivered.length === 0 && rejected.length === 0) return;
      for (const entry of delivered) {
        if (!held.take(entry.sequence)) {
          tally.left(1, sizeOf(entry));
          this.#backlog.addDelivered(entry.sequence);
        }
        tally.counters.delivered += 1;
      }
      const failedAtMs = clock.now();
      for (const { entry, reason } of rejected) {
        if (!held.take(entry.sequence)) tally.left(1, sizeOf(entry));
        this.#backlog.addRejected({ entry, reason, failedAtMs });
        tally.counters.dead_letters += 1;
      }
      tally.countersDirty = true;
      this.persist();
    } finally {
      this.#inFlight.clear();
    }
  }

  /** Tells the database what was settled; when it cannot take it, keeps it in memory and retries. */
  persist(): void {
    const { database, tally, clock, logger } = this.#options;
    const store = database.store;
    if (!store || (this.#backlog.size === 0 && !tally.countersDirty)) return;
    try {
      store.settle(this.#backlog.delivered(), this.#backlog.rejected(), tally.counters, clock.now());
      this.#backlog.clear();
      tally.countersDirty = false;
      this.storageWorked();
    } catch (error) {
      database.fail("outbox cannot delete delivered events", error);
      try {
        const through = this.settledThrough();
        if (through !== null) this.#options.recordSettled(through);
      } catch (floorError) {
        logger.debug({ err: floorError }, "cannot note in the sequence floor how far events are settled");
      }
      database.retryLater();
    }
  }

  /** The database takes writes, and nothing waits in memory for it: the fault (if any) is over. */
  storageWorked(): void {
    const { database, held } = this.#options;
    if (database.store && held.count === 0 && this.#backlog.size === 0)
      database.recover("outbox storage is writable again: nothing is left only in memory");
  }

  /** The highest sequence up to which every event has left the outbox; null when the database cannot tell. */
  settledThrough(): number | null {
    const store = this.#options.database.store;
    if (!store) return null;
    const firsts = [
      this.#unsettledStored(store, 1)[0]?.sequence,
      this.#options.held.firstSequence,
      this.#backlog.lowestRejected(),
    ].filter((sequence) => typeof sequence === "number");
    return firsts.length === 0 ? this.#options.tally.counters.last_sequence : Math.min(...firsts) - 1;
  }

  /** When the oldest stored event not settled yet was accepted, null when there is none (or no database). */
  oldestStoredCreatedAtMs(): number | null {
    const store = this.#options.database.store;
    return store ? (this.#unsettledStored(store, 1)[0]?.createdAtMs ?? null) : null;
  }

  /** The oldest stored events not settled yet, at most `limit`. */
  #unsettledStored(store: OutboxStore, limit: number): StoredOutboxEntry[] {
    const found: StoredOutboxEntry[] = [];
    // Pages larger than asked only when settled events may have to be skipped.
    const pageSize = this.#backlog.size === 0 ? limit : Math.max(limit, 64);
    let cursor = this.#scanFrom;
    let settledPrefix = true;
    // Bounded: each page moves the cursor on through a finite table.
    for (;;) {
      const page = store.batchAfter(cursor, pageSize);
      for (const entry of page) {
        if (this.#backlog.has(entry.sequence)) {
          if (settledPrefix) this.#scanFrom = entry.sequence;
          continue;
        }
        settledPrefix = false;
        found.push(entry);
        if (found.length === limit) return found;
      }
      const last = page.at(-1);
      if (page.length < pageSize || !last) return found;
      cursor = last.sequence;
    }
  }
}
