import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { EventClass, EventMetadata } from "../contracts/index.ts";
import { ensurePrivateFile } from "../runtime/index.ts";
import { CommandInboxTables } from "./command-inbox-tables.ts";
import type { Rejection } from "./settle-backlog.ts";
import { TaskLedgerTables } from "./task-ledger-tables.ts";
import type { StoredOutboxEntry } from "./types.ts";

/**
 * The outbox's on-disk form: one SQLite database in WAL mode (node:sqlite, no hand-written file
 * format). Statements are prepared once; every write is one transaction.
 *
 * Durability (the `durability` setting, SQLite's `synchronous`):
 * - "normal" (default): each append is committed to the write-ahead log before `append` returns,
 *   so a crash or kill -9 of the agent loses nothing. A power cut or kernel panic can lose the
 *   appends since the WAL was last synced to the disk (SQLite syncs at each checkpoint, about every
 *   1000 pages); the database itself stays consistent.
 * - "full": every commit is fsynced: a power cut loses nothing that `append` accepted, at the price
 *   of one fsync per append (see the benchmark for what that costs here).
 */
export type Durability = "full" | "normal";

const CLASS_CODE: Record<EventClass, number> = { telemetry: 0, state: 1 };
const CLASS_OF_CODE: readonly EventClass[] = ["telemetry", "state"];

interface EventRow {
  sequence: number;
  subject: string;
  event_class: number;
  metadata: string;
  payload: Uint8Array;
  created_at_ms: number;
  size_bytes: number;
}

/**
 * How many delivered events the store remembers (metadata, size and the start of the body, never
 * the whole payload) so `edge-agent events` can say what was sent. The record is kept in the same
 * transaction that deletes them, and pruned there to the newest this many: about 0.5 KB a row,
 * so at most about 0.5 MB. It is a window for operators, not a delivery record: nothing reads it
 * back into delivery, and an event delivered from memory (never stored, a full disk) is absent.
 */
export const RECENTLY_SENT_LIMIT = 1_000;
/** Characters of the body kept with a sent event: enough to recognise it in a listing. */
export const SENT_SUMMARY_CHARS = 160;

export const COUNTERS = ["last_sequence", "delivered", "evicted_telemetry", "evicted_state", "dead_letters"] as const;
export type CounterName = (typeof COUNTERS)[number];

export class OutboxStore {
  /** The command inbox's tables, in this same database (command-inbox-tables.ts says why). */
  readonly commands: CommandInboxTables;
  /** The remote tasks' ids and early cancels, in this same database (task-ledger-tables.ts). */
  readonly tasks: TaskLedgerTables;
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #setCounter: StatementSync;
  readonly #deleteOne: StatementSync;
  readonly #selectBatch: StatementSync;
  readonly #oldestOfClass: StatementSync;
  readonly #expired: StatementSync;
  readonly #insertDeadLetter: StatementSync;
  readonly #recordSent: StatementSync;
  readonly #pruneSent: StatementSync;

  constructor(path: string, durability: Durability) {
    ensurePrivateFile(path);
    this.#db = new DatabaseSync(path, { timeout: 2_000 });
    this.#db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${durability === "full" ? "FULL" : "NORMAL"};`);
    const tables = new Set(
      (this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map(
        (row) => row.name,
      ),
    );
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS events (
        sequence INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        event_class INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS events_by_class ON events (event_class, sequence);
      CREATE TABLE IF NOT EXISTS dead_letters (
        sequence INTEGER PRIMARY KEY,
        subject TEXT NOT NULL,
        metadata TEXT NOT NULL,
        payload BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        failed_at_ms INTEGER NOT NULL,
        reason TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS sent_events (
        sent_id INTEGER PRIMARY KEY,
        sequence INTEGER NOT NULL,
        subject TEXT NOT NULL,
        metadata TEXT NOT NULL,
        summary TEXT NOT NULL,
        body_bytes INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        sent_at_ms INTEGER NOT NULL
      );
    `);
    this.#db.exec(CommandInboxTables.schema);
    this.#db.exec(TaskLedgerTables.schema);
    // Fail now, on open, if the file is not a database: the caller sets it aside.
    this.#db.prepare("SELECT count(*) FROM events").get();
    // A database an earlier version wrote (events, but no inbox): its durable consumers are to be taken over.
    this.commands = new CommandInboxTables(this.#db, tables.has("events") && !tables.has("commands"));
    this.tasks = new TaskLedgerTables(this.#db);
    this.#insert = this.#db.prepare(
      "INSERT INTO events (sequence, subject, event_class, metadata, payload, created_at_ms, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#setCounter = this.#db.prepare(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    );
    this.#deleteOne = this.#db.prepare("DELETE FROM events WHERE sequence = ?");
    this.#selectBatch = this.#db.prepare("SELECT * FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?");
    this.#oldestOfClass = this.#db.prepare(
      "SELECT sequence, size_bytes FROM events WHERE event_class = ? ORDER BY sequence LIMIT ?",
    );
    this.#expired = this.#db.prepare(
      "SELECT sequence, event_class, size_bytes FROM events WHERE created_at_ms < ? ORDER BY sequence LIMIT 1000",
    );
    this.#insertDeadLetter = this.#db.prepare(
      "INSERT OR REPLACE INTO dead_letters (sequence, subject, metadata, payload, created_at_ms, failed_at_ms, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    // sent_id follows the order of settlement (the newest row is never pruned, so ids only rise):
    // a reader following the table sees an event settled late, after a retry, too.
    this.#recordSent = this.#db.prepare(
      `INSERT INTO sent_events (sequence, subject, metadata, summary, body_bytes, created_at_ms, sent_at_ms)
       SELECT sequence, subject, metadata, substr(CAST(payload AS TEXT), 1, ${SENT_SUMMARY_CHARS}), length(payload), created_at_ms, ? FROM events WHERE sequence = ?`,
    );
    this.#pruneSent = this.#db.prepare(
      `DELETE FROM sent_events WHERE sent_id <= (SELECT max(sent_id) FROM sent_events) - ${RECENTLY_SENT_LIMIT}`,
    );
  }

  readCounters(): Record<CounterName, number> {
    const rows = this.#db.prepare("SELECT name, value FROM counters").all() as Array<{ name: string; value: number }>;
    const counters = Object.fromEntries(COUNTERS.map((name) => [name, 0])) as Record<CounterName, number>;
    for (const row of rows)
      if ((COUNTERS as readonly string[]).includes(row.name)) counters[row.name as CounterName] = Number(row.value);
    return counters;
  }

  pendingTotals(): { count: number; bytes: number } {
    const row = this.#db
      .prepare("SELECT count(*) AS count, coalesce(sum(size_bytes), 0) AS bytes FROM events")
      .get() as { count: number; bytes: number };
    return { count: Number(row.count), bytes: Number(row.bytes) };
  }

  /**
   * Inserts entries whose sequences are already assigned, and moves the sequence counter, atomically;
   * `alsoInTransaction` (a command's settlement) commits or fails with them.
   */
  insert(entries: readonly StoredOutboxEntry[], lastSequence: number, alsoInTransaction?: () => void): void {
    this.#transaction(() => {
      alsoInTransaction?.();
      for (const entry of entries) {
        this.#insert.run(
          entry.sequence,
          entry.subject,
          CLASS_CODE[entry.eventClass],
          JSON.stringify(entry.metadata),
          entry.payload,
          entry.createdAtMs,
          sizeOf(entry),
        );
      }
      this.#setCounter.run("last_sequence", lastSequence);
    });
  }

  /** The next events after `afterSequence`, oldest first. */
  batchAfter(afterSequence: number, limit: number): StoredOutboxEntry[] {
    return (this.#selectBatch.all(afterSequence, limit) as unknown as EventRow[]).map(toEntry);
  }

  /**
   * Deletes delivered events (remembering the newest `RECENTLY_SENT_LIMIT` of them) and
   * dead-letters rejected ones (stored or not: a refused event that never reached the database is
   * kept as a dead letter too), and moves the counters, in one transaction.
   */
  settle(
    delivered: readonly number[],
    rejected: readonly Rejection[],
    counters: Record<CounterName, number>,
    settledAtMs: number,
  ): void {
    this.#transaction(() => {
      for (const sequence of delivered) {
        this.#recordSent.run(settledAtMs, sequence);
        this.#deleteOne.run(sequence);
      }
      if (delivered.length > 0) this.#pruneSent.run();
      for (const { entry, reason, failedAtMs } of rejected) {
        this.#insertDeadLetter.run(
          entry.sequence,
          entry.subject,
          JSON.stringify(entry.metadata),
          entry.payload,
          entry.createdAtMs,
          failedAtMs,
          reason,
        );
        this.#deleteOne.run(entry.sequence);
      }
      for (const name of ["delivered", "dead_letters", "evicted_telemetry", "evicted_state"] as const)
        this.#setCounter.run(name, counters[name]);
    });
  }

  /** Stored events up to `sequence`, oldest first (sequence and size only). */
  sequencesThrough(sequence: number): Array<{ sequence: number; sizeBytes: number }> {
    return (
      this.#db
        .prepare("SELECT sequence, size_bytes FROM events WHERE sequence <= ? ORDER BY sequence")
        .all(sequence) as Array<{ sequence: number; size_bytes: number }>
    ).map((row) => ({ sequence: Number(row.sequence), sizeBytes: Number(row.size_bytes) }));
  }

  oldestOfClass(eventClass: EventClass, limit: number): Array<{ sequence: number; sizeBytes: number }> {
    return (
      this.#oldestOfClass.all(CLASS_CODE[eventClass], limit) as Array<{ sequence: number; size_bytes: number }>
    ).map((row) => ({
      sequence: Number(row.sequence),
      sizeBytes: Number(row.size_bytes),
    }));
  }

  expiredBefore(cutoffMs: number): Array<{ sequence: number; eventClass: EventClass; sizeBytes: number }> {
    return (this.#expired.all(cutoffMs) as Array<{ sequence: number; event_class: number; size_bytes: number }>).map(
      (row) => ({
        sequence: Number(row.sequence),
        eventClass: CLASS_OF_CODE[row.event_class] ?? "state",
        sizeBytes: Number(row.size_bytes),
      }),
    );
  }

  evict(sequences: readonly number[], counters: Record<CounterName, number>): void {
    this.#transaction(() => {
      for (const sequence of sequences) this.#deleteOne.run(sequence);
      this.#setCounter.run("evicted_telemetry", counters.evicted_telemetry);
      this.#setCounter.run("evicted_state", counters.evicted_state);
    });
  }

  deadLetterCount(): number {
    return Number((this.#db.prepare("SELECT count(*) AS count FROM dead_letters").get() as { count: number }).count);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Runs `work` in one write transaction (the command inbox's changes that come with no event). */
  transaction(work: () => void): void {
    this.#transaction(work);
  }

  #transaction(work: () => void): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      work();
      this.#db.exec("COMMIT");
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }
}

export function sizeOf(entry: Pick<StoredOutboxEntry, "payload" | "subject">): number {
  // Payload plus a fixed allowance for the row's subject, metadata and index entries.
  return entry.payload.byteLength + entry.subject.length + 256;
}

function toEntry(row: EventRow): StoredOutboxEntry {
  return {
    sequence: Number(row.sequence),
    subject: row.subject,
    eventClass: CLASS_OF_CODE[row.event_class] ?? "state",
    metadata: JSON.parse(row.metadata) as Omit<EventMetadata, "sequence">,
    payload: row.payload,
    createdAtMs: Number(row.created_at_ms),
  };
}
