import { join } from "node:path";
import type { Logger } from "../runtime/index.ts";
import type { OutboxTally } from "./outbox-tally.ts";
import { outboxIdFor, restartSequence, SequenceFloor } from "./sequence-floor.ts";
import type { Durability } from "./sqlite-store.ts";
import type { OutboxEntryInput, OutboxStats, StoredOutboxEntry } from "./types.ts";

export const SEQUENCE_FLOOR_FILE = "outbox.sequence";

/**
 * The device sequence as one run hands it out: in order, each number only once the floor file
 * (sequence-floor.ts) makes it safe from reuse, continuing where the last run provably stopped (or
 * past all it reserved, said aloud), in the outbox life the numbers belong to (X-Outbox-ID). The
 * last number handed out is the tally's `last_sequence`, which the database keeps too.
 */
export class OutboxNumbering {
  readonly #floor: SequenceFloor;
  readonly #lastRun: ReturnType<SequenceFloor["read"]>;
  readonly #bootId: string | null;
  readonly #durability: Durability;
  readonly #tally: OutboxTally;
  readonly #logger: Logger;
  #outboxId = "";
  #sequenceSkip: OutboxStats["sequenceSkip"] = null;

  constructor(options: {
    dataDir: string;
    bootId: string | null;
    durability: Durability;
    tally: OutboxTally;
    logger: Logger;
  }) {
    this.#floor = new SequenceFloor(join(options.dataDir, SEQUENCE_FLOOR_FILE), options.bootId);
    this.#lastRun = this.#floor.read();
    this.#bootId = options.bootId;
    this.#durability = options.durability;
    this.#tally = options.tally;
    this.#logger = options.logger;
  }

  /** The outbox life this run numbers in (X-Outbox-ID on every event). */
  get outboxId(): string {
    return this.#outboxId;
  }

  /** Set when this run started past numbers an earlier run reserved (a crash that may have lost events). */
  get sequenceSkip(): OutboxStats["sequenceSkip"] {
    return this.#sequenceSkip;
  }

  /** How far the last run saw every event settled (the database may not have been told). */
  get settledByLastRun(): number {
    return this.#floor.settledThrough;
  }

  /**
   * Where this run's numbers start, given what became of the last run's database (`fate`) and
   * the counter read from it; `floorFault` is told when the floor cannot be written (then every
   * event is refused until it can).
   */
  begin(fate: "kept" | "lost" | "unavailable", floorFault: (error: unknown) => void): void {
    const { counters } = this.#tally;
    const lastRun = this.#lastRun;
    const databaseLastSequence = counters.last_sequence;
    counters.last_sequence = restartSequence({
      ...lastRun,
      database: fate,
      databaseLastSequence,
      bootId: this.#bootId,
      durability: this.#durability,
    });
    this.#outboxId = outboxIdFor(lastRun.record, counters.last_sequence);
    const known = Math.max(databaseLastSequence, lastRun.record?.base ?? lastRun.legacyFloor ?? 0);
    if (counters.last_sequence > known) {
      this.#sequenceSkip = { after: known, through: counters.last_sequence };
      this.#logger.warn(
        { from: known, to: counters.last_sequence },
        "outbox sequence continues past what the last run reserved: it may have lost events (a crash while events were only in memory, a power cut, or a lost database)",
      );
    }
    try {
      this.#floor.begin(counters.last_sequence, this.#outboxId);
    } catch (error) {
      floorFault(error);
    }
  }

  /**
   * `inputs` numbered after the last number handed out, made safe in the floor first. Throws the
   * floor's error when it cannot be (then nothing is handed out).
   */
  number(inputs: readonly OutboxEntryInput[], createdAtMs: number): StoredOutboxEntry[] {
    const before = this.#tally.counters.last_sequence;
    this.#floor.cover(before + inputs.length);
    const entries = inputs.map(
      (input, index): StoredOutboxEntry => ({ ...input, sequence: before + index + 1, createdAtMs }),
    );
    this.#tally.counters.last_sequence = before + inputs.length;
    return entries;
  }

  /** Numbers nobody has seen (`entries`, the last handed out) are handed out again, to the next event accepted. */
  takeBack(entries: readonly StoredOutboxEntry[]): void {
    const first = entries[0];
    if (first) this.#tally.counters.last_sequence = first.sequence - 1;
  }

  /** Events with numbers now live only in memory (true), or all are in the database again (false). */
  markHolding(holding: boolean): void {
    this.#floor.markHolding(holding);
  }

  /** Every event up to `sequence` has left the outbox, though the database may not know yet. */
  recordSettled(sequence: number): void {
    this.#floor.recordSettled(sequence);
  }

  /** A clean stop: the floor says exactly the last number used, and how far everything was settled. */
  close(settledThrough: number): void {
    this.#floor.close(this.#tally.counters.last_sequence, settledThrough);
  }
}
