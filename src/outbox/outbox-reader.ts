import { existsSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { EdgeError } from "../errors/index.ts";
import { OUTBOX_FILE } from "./outbox.ts";
import { SENT_SUMMARY_CHARS } from "./sqlite-store.ts";

/** One event as an operator sees it: where it stands, what it is, how big. */
export interface OutboxListingEntry {
  readonly state: "sent" | "pending" | "dead-letter";
  readonly sequence: number;
  readonly subject: string;
  readonly eventType: string;
  readonly eventId: string;
  readonly createdAtMs: number;
  /** When the outbox settled it: JetStream's ack (sent) or refusal (dead letter); null while pending. */
  readonly settledAtMs: number | null;
  /** Bytes of the JSON body. */
  readonly bodyBytes: number;
  /** The start of the JSON body. */
  readonly summary: string;
  /** Why JetStream refused it (dead letters only). */
  readonly reason: string | null;
}

export class OutboxNotFoundError extends EdgeError {
  readonly code = "EDGE_NO_OUTBOX";
  constructor(path: string) {
    super(`no outbox at ${path}: the agent has not run with this data dir (or it is not readable by this user)`);
    this.name = "OutboxNotFoundError";
  }
}

interface Row {
  cursor: number;
  sequence: number;
  subject: string;
  metadata: string;
  summary: string;
  body_bytes: number;
  created_at_ms: number;
  settled_at_ms: number | null;
  reason: string | null;
}

const SUMMARY = `substr(CAST(payload AS TEXT), 1, ${SENT_SUMMARY_CHARS})`;

/**
 * Reads the outbox of a data dir for operators, read-only, while the agent may be writing it:
 * SQLite's WAL mode gives each read a consistent snapshot and never blocks the writer, so no lock
 * is taken and nothing in the file can change through this reader. Events the agent holds only in
 * memory (its disk full) are not in the file and not listed.
 *
 * Each listing pages by a cursor that only rises: `sentAfter` by the order of settlement,
 * `pendingAfter` and `deadLettersAfter` by sequence.
 */
export class OutboxReader {
  readonly #db: DatabaseSync;
  readonly #sent: StatementSync | null;
  readonly #pending: StatementSync;
  readonly #deadLetters: StatementSync;

  constructor(dataDir: string) {
    const path = join(dataDir, OUTBOX_FILE);
    if (!existsSync(path)) throw new OutboxNotFoundError(path);
    this.#db = new DatabaseSync(path, { readOnly: true, timeout: 2_000 });
    // An outbox last written by an older agent has no record of sent events yet.
    const hasSent =
      this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sent_events'").get() !== undefined;
    this.#sent = hasSent
      ? this.#db.prepare(
          "SELECT sent_id AS cursor, sequence, subject, metadata, summary, body_bytes, created_at_ms, sent_at_ms AS settled_at_ms, NULL AS reason FROM sent_events WHERE sent_id > ? ORDER BY sent_id LIMIT ?",
        )
      : null;
    this.#pending = this.#db.prepare(
      `SELECT sequence AS cursor, sequence, subject, metadata, ${SUMMARY} AS summary, length(payload) AS body_bytes, created_at_ms, NULL AS settled_at_ms, NULL AS reason FROM events WHERE sequence > ? ORDER BY sequence LIMIT ?`,
    );
    this.#deadLetters = this.#db.prepare(
      `SELECT sequence AS cursor, sequence, subject, metadata, ${SUMMARY} AS summary, length(payload) AS body_bytes, created_at_ms, failed_at_ms AS settled_at_ms, reason FROM dead_letters WHERE sequence > ? ORDER BY sequence LIMIT ?`,
    );
  }

  /** The delivered events the outbox still remembers (the newest `RECENTLY_SENT_LIMIT`), in the order they were settled. */
  sentAfter(cursor: number, limit: number): { entries: OutboxListingEntry[]; cursor: number } {
    return this.#sent ? page(this.#sent, "sent", cursor, limit) : { entries: [], cursor };
  }

  /** Events waiting for JetStream's ack, oldest first. */
  pendingAfter(sequence: number, limit: number): { entries: OutboxListingEntry[]; cursor: number } {
    return page(this.#pending, "pending", sequence, limit);
  }

  /** Events JetStream refused for good (kept, never sent again). */
  deadLettersAfter(sequence: number, limit: number): { entries: OutboxListingEntry[]; cursor: number } {
    return page(this.#deadLetters, "dead-letter", sequence, limit);
  }

  /** Runs `read` on one snapshot of the file: listings taken together agree on where each event stands. */
  consistently<T>(read: () => T): T {
    this.#db.exec("BEGIN");
    try {
      return read();
    } finally {
      this.#db.exec("COMMIT");
    }
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

function page(
  statement: StatementSync,
  state: OutboxListingEntry["state"],
  cursor: number,
  limit: number,
): { entries: OutboxListingEntry[]; cursor: number } {
  const rows = statement.all(cursor, limit) as unknown as Row[];
  return {
    entries: rows.map((row) => toListing(state, row)),
    cursor: rows.length === 0 ? cursor : Number(rows[rows.length - 1]?.cursor),
  };
}

function toListing(state: OutboxListingEntry["state"], row: Row): OutboxListingEntry {
  const metadata = parseMetadata(row.metadata);
  return {
    state,
    sequence: Number(row.sequence),
    subject: row.subject,
    eventType: metadata.eventType,
    eventId: metadata.eventId,
    createdAtMs: Number(row.created_at_ms),
    settledAtMs: row.settled_at_ms === null ? null : Number(row.settled_at_ms),
    bodyBytes: Number(row.body_bytes),
    summary: row.summary,
    reason: row.reason,
  };
}

/** The two fields a listing shows; a row the agent wrote always has them, a damaged one says so. */
function parseMetadata(text: string): { eventType: string; eventId: string } {
  try {
    const parsed = JSON.parse(text) as { eventType?: unknown; eventId?: unknown };
    return {
      eventType: typeof parsed.eventType === "string" ? parsed.eventType : "?",
      eventId: typeof parsed.eventId === "string" ? parsed.eventId : "?",
    };
  } catch {
    return { eventType: "?", eventId: "?" };
  }
}
