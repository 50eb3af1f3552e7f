import { EdgeError } from "../errors/index.ts";
import type { Clock } from "../runtime/index.ts";
import type { OutboxDelivery } from "./delivery.ts";
import type { HeldEvents } from "./held-events.ts";
import type { OutboxNumbering } from "./numbering.ts";
import type { OutboxDatabase } from "./outbox-database.ts";
import { OutboxTally } from "./outbox-tally.ts";
import type { OutboxRetention } from "./retention.ts";
import { type OutboxStore, sizeOf } from "./sqlite-store.ts";
import type { OutboxEntryInput, StoredOutboxEntry } from "./types.ts";

/** The database cannot be written right now (a full or failing disk): what needed it waits and is tried again. */
export class OutboxStorageUnavailableError extends EdgeError {
  readonly code = "EDGE_OUTBOX_STORAGE_UNAVAILABLE";
  constructor(reason: string) {
    super(`the outbox database cannot be written now: ${reason}`);
    this.name = "OutboxStorageUnavailableError";
  }
}

/** The event was not accepted: it has no sequence number and is not in the outbox. */
export class OutboxRefusedError extends EdgeError {
  readonly code = "EDGE_OUTBOX_REFUSED";
  constructor(count: number, cause: unknown) {
    super(
      `outbox refused ${count} event(s): no sequence number can be made safe from reuse (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
    this.name = "OutboxRefusedError";
  }
}

const REFUSED_MEANWHILE = "events are refused until it can: a number that could be reused is never handed out";

/**
 * How events come into the outbox: numbered (numbering.ts), room made (retention.ts), stored; or,
 * while the database cannot take them, held in memory in order (bounded, counted) and stored once
 * it can. An event is refused only when no number can be made safe from reuse.
 */
export class OutboxIntake {
  readonly #database: OutboxDatabase;
  readonly #numbering: OutboxNumbering;
  readonly #retention: OutboxRetention;
  readonly #delivery: OutboxDelivery;
  readonly #tally: OutboxTally;
  readonly #held: HeldEvents;
  readonly #clock: Clock;

  constructor(options: {
    database: OutboxDatabase;
    numbering: OutboxNumbering;
    retention: OutboxRetention;
    delivery: OutboxDelivery;
    tally: OutboxTally;
    held: HeldEvents;
    clock: Clock;
  }) {
    this.#database = options.database;
    this.#numbering = options.numbering;
    this.#retention = options.retention;
    this.#delivery = options.delivery;
    this.#tally = options.tally;
    this.#held = options.held;
    this.#clock = options.clock;
  }

  /** Accepts `inputs` with the next sequence numbers: stored, or held in memory. Throws `OutboxRefusedError`. */
  append(inputs: readonly OutboxEntryInput[]): StoredOutboxEntry[] {
    if (inputs.length === 0) return [];
    const database = this.#database;
    const refuse = (what: string, error: unknown): never => {
      database.fail(what, error, REFUSED_MEANWHILE);
      throw new OutboxRefusedError(inputs.length, error);
    };
    let entries: StoredOutboxEntry[] = [];
    try {
      entries = this.#numbering.number(inputs, this.#clock.now());
    } catch (error) {
      refuse("outbox cannot reserve sequence numbers", error);
    }
    let stored = false;
    if (this.#held.count === 0 && database.store) {
      try {
        this.#write(entries);
        stored = true;
        this.#delivery.storageWorked();
      } catch (error) {
        database.fail("outbox cannot write to the database", error);
      }
    }
    if (!stored) {
      // Behind events already held: keep the order. The floor must say so before anyone sees these numbers.
      try {
        this.#numbering.markHolding(true);
      } catch (error) {
        // Nobody has seen these numbers: they are handed out again, to the next event accepted.
        this.#numbering.takeBack(entries);
        refuse("outbox cannot mark events as held in the sequence floor", error);
      }
      this.#hold(entries);
    }
    this.#delivery.notify();
    return entries;
  }

  /**
   * Appends `inputs` only if the database takes them now (never held in memory), with `also` in the
   * same transaction: a command's result and its settlement are stored together or not at all.
   * Throws `OutboxStorageUnavailableError` (or the database's error) when they cannot be.
   */
  appendDurablyWith(inputs: readonly OutboxEntryInput[], also: (open: OutboxStore) => void): StoredOutboxEntry[] {
    const open = this.#database.ensureOpen();
    if (!open || this.#held.count > 0) {
      throw new OutboxStorageUnavailableError(
        this.#database.problem ?? "events are held in memory until the disk takes them",
      );
    }
    if (inputs.length === 0) {
      open.transaction(() => also(open));
      return [];
    }
    const entries = this.#numbering.number(inputs, this.#clock.now());
    try {
      this.#write(entries, () => also(open));
    } catch (error) {
      // Nobody has seen these numbers: they are handed out again, to the next event accepted.
      this.#numbering.takeBack(entries);
      throw error;
    }
    this.#delivery.storageWorked();
    this.#delivery.notify();
    return entries;
  }

  /** Stores what is held in memory, if the database takes it now. */
  flushHeld(): void {
    if (this.#held.count === 0 || !this.#database.ensureOpen()) return;
    try {
      this.#write(this.#held.all());
    } catch (error) {
      this.#database.fail("outbox cannot write to the database", error);
      return;
    }
    this.#held.clear();
    this.#delivery.storageWorked();
    this.#delivery.notify();
  }

  #write(entries: StoredOutboxEntry[], alsoInTransaction?: () => void): void {
    const open = this.#database.store as OutboxStore;
    this.#retention.makeRoom(entries.reduce((sum, entry) => sum + sizeOf(entry), 0));
    open.insert(entries, this.#tally.counters.last_sequence, alsoInTransaction);
    this.#tally.stored(entries);
    try {
      // The database's counter now covers every number used, held ones included.
      this.#numbering.markHolding(false);
    } catch {
      // The floor stays "holding": a crash now costs a gap in the sequence, never a reused number.
    }
  }

  #hold(entries: readonly StoredOutboxEntry[]): void {
    for (const entry of entries) {
      for (const dropped of this.#held.add(entry, this.#delivery.inFlight)) {
        this.#tally.counters[OutboxTally.evictedCounter(dropped.eventClass)] += 1;
        this.#tally.countersDirty = true;
      }
    }
    this.#database.retryLater();
  }
}
