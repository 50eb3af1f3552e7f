import type { DatabaseSync, StatementSync } from "node:sqlite";

/**
 * The agent's inbox of platform commands, kept in the outbox's database so that a command's
 * result event and the command's settlement are written in ONE transaction: a result is never
 * stored without the command being settled, nor the other way round.
 *
 * Two tables:
 * - `command_positions`: per feed (a subject the agent reads commands from), the stream sequence of
 *   the last message taken from it. It moves only in the transaction that stores the messages it
 *   passes, so a message is stored exactly once, whatever fails.
 * - `commands`: every message taken, unique by (stream, stream sequence), with its state:
 *   `pending` (waiting, possibly until `not_before_ms`), `running` (its work started; a row found
 *   running when the database is opened was cut short by a crash, kill -9 or power loss and becomes
 *   `interrupted`), `interrupted` (reported FAILED by its runner, never run again), `settled`
 *   (with its `outcome`). Settled rows are kept, newest first, up to `SETTLED_COMMANDS_KEPT`, so an
 *   operator can see what was done.
 */
export const SETTLED_COMMANDS_KEPT = 500;

export type CommandState = "pending" | "running" | "interrupted" | "settled";

/** One message as read from a command stream, before it is a row. */
export interface InboxMessage {
  readonly stream: string;
  readonly streamSequence: number;
  readonly subject: string;
  /** Header name -> values, as stored (a command may carry none). */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  readonly body: Uint8Array;
  /** When the server stored it (epoch ms). */
  readonly storedAtMs: number;
}

export interface CommandRow extends InboxMessage {
  readonly id: number;
  readonly feed: string;
  readonly state: CommandState;
  readonly attempts: number;
  readonly notBeforeMs: number;
  readonly receivedAtMs: number;
  readonly outcome: string | null;
}

interface RawRow {
  id: number;
  feed: string;
  stream: string;
  stream_seq: number;
  subject: string;
  headers: string;
  body: Uint8Array;
  stored_at_ms: number;
  received_at_ms: number;
  state: string;
  attempts: number;
  not_before_ms: number;
  outcome: string | null;
}

const STATES: readonly CommandState[] = ["pending", "running", "interrupted", "settled"];

function toRow(raw: RawRow): CommandRow {
  return {
    id: Number(raw.id),
    feed: raw.feed,
    stream: raw.stream,
    streamSequence: Number(raw.stream_seq),
    subject: raw.subject,
    headers: JSON.parse(raw.headers) as Record<string, string[]>,
    body: raw.body,
    storedAtMs: Number(raw.stored_at_ms),
    receivedAtMs: Number(raw.received_at_ms),
    state: (STATES as readonly string[]).includes(raw.state) ? (raw.state as CommandState) : "interrupted",
    attempts: Number(raw.attempts),
    notBeforeMs: Number(raw.not_before_ms),
    outcome: raw.outcome,
  };
}

/** SQL for the inbox; every method runs inside the caller's transaction when there is one. */
export class CommandInboxTables {
  readonly #db: DatabaseSync;
  readonly #position: StatementSync;
  readonly #setPosition: StatementSync;
  readonly #insert: StatementSync;
  readonly #ready: StatementSync;
  readonly #setState: StatementSync;
  readonly #start: StatementSync;
  readonly #settle: StatementSync;
  readonly #prune: StatementSync;
  readonly #byState: StatementSync;
  readonly #newerInFeed: StatementSync;
  readonly #pendingIn: StatementSync;

  static readonly schema = `
    CREATE TABLE IF NOT EXISTS command_positions (
      feed TEXT PRIMARY KEY,
      stream TEXT NOT NULL,
      stream_seq INTEGER NOT NULL,
      updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS commands (
      id INTEGER PRIMARY KEY,
      feed TEXT NOT NULL,
      stream TEXT NOT NULL,
      stream_seq INTEGER NOT NULL,
      subject TEXT NOT NULL,
      headers TEXT NOT NULL,
      body BLOB NOT NULL,
      stored_at_ms INTEGER NOT NULL,
      received_at_ms INTEGER NOT NULL,
      state TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      not_before_ms INTEGER NOT NULL DEFAULT 0,
      settled_at_ms INTEGER,
      outcome TEXT,
      UNIQUE (stream, stream_seq)
    );
    CREATE INDEX IF NOT EXISTS commands_by_state ON commands (state, id);
  `;

  /** The database was written by a version before the inbox existed (the agent was upgraded). */
  readonly predatesInbox: boolean;

  constructor(db: DatabaseSync, predatesInbox: boolean) {
    this.#db = db;
    this.predatesInbox = predatesInbox;
    this.#position = db.prepare("SELECT stream_seq FROM command_positions WHERE feed = ?");
    this.#setPosition = db.prepare(
      `INSERT INTO command_positions (feed, stream, stream_seq, updated_at_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT(feed) DO UPDATE SET stream = excluded.stream, stream_seq = excluded.stream_seq, updated_at_ms = excluded.updated_at_ms`,
    );
    this.#insert = db.prepare(
      `INSERT OR IGNORE INTO commands (feed, stream, stream_seq, subject, headers, body, stored_at_ms, received_at_ms, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')`,
    );
    this.#ready = db.prepare(
      "SELECT * FROM commands WHERE state = 'pending' AND not_before_ms <= ? ORDER BY id LIMIT ?",
    );
    this.#setState = db.prepare("UPDATE commands SET state = ?, not_before_ms = ? WHERE id = ?");
    this.#start = db.prepare("UPDATE commands SET state = 'running', attempts = attempts + 1 WHERE id = ?");
    this.#settle = db.prepare(
      "UPDATE commands SET state = 'settled', outcome = ?, settled_at_ms = ?, body = X'' WHERE id = ?",
    );
    this.#prune = db.prepare(
      `DELETE FROM commands WHERE state = 'settled' AND id NOT IN
        (SELECT id FROM commands WHERE state = 'settled' ORDER BY id DESC LIMIT ${SETTLED_COMMANDS_KEPT})`,
    );
    this.#byState = db.prepare("SELECT * FROM commands WHERE state = ? ORDER BY id");
    this.#newerInFeed = db.prepare("SELECT 1 FROM commands WHERE feed = ? AND stream = ? AND stream_seq > ? LIMIT 1");
    this.#pendingIn = db.prepare(
      "SELECT count(*) AS n FROM commands WHERE state = 'pending' AND feed IN (SELECT value FROM json_each(?))",
    );
  }

  /** Rows a crash left running: they become `interrupted` (their runner reports them, once). */
  markInterrupted(): number {
    return Number(
      (
        this.#db.prepare("UPDATE commands SET state = 'interrupted' WHERE state = 'running'").run() as {
          changes: number;
        }
      ).changes,
    );
  }

  position(feed: string): number | null {
    const row = this.#position.get(feed) as { stream_seq: number } | undefined;
    return row === undefined ? null : Number(row.stream_seq);
  }

  /** Stores the messages (those already stored are skipped) and moves the feed's position; returns how many are new. */
  accept(feed: string, messages: readonly InboxMessage[], position: number, nowMs: number): number {
    let added = 0;
    let stream = messages[0]?.stream ?? "";
    for (const message of messages) {
      stream = message.stream;
      const result = this.#insert.run(
        feed,
        message.stream,
        message.streamSequence,
        message.subject,
        JSON.stringify(message.headers),
        message.body,
        message.storedAtMs,
        nowMs,
      ) as { changes: number };
      added += Number(result.changes);
    }
    this.#setPosition.run(feed, stream, position, nowMs);
    return added;
  }

  ready(nowMs: number, limit: number): CommandRow[] {
    return (this.#ready.all(nowMs, limit) as unknown as RawRow[]).map(toRow);
  }

  inState(state: CommandState): CommandRow[] {
    return (this.#byState.all(state) as unknown as RawRow[]).map(toRow);
  }

  /** How many commands are in each state not yet settled. */
  counts(): { pending: number; running: number; interrupted: number } {
    const rows = this.#db
      .prepare("SELECT state, count(*) AS n FROM commands WHERE state != 'settled' GROUP BY state")
      .all() as Array<{ state: string; n: number }>;
    const count = (state: string): number => Number(rows.find((row) => row.state === state)?.n ?? 0);
    return { pending: count("pending"), running: count("running"), interrupted: count("interrupted") };
  }

  pendingIn(feeds: readonly string[]): number {
    const row = this.#pendingIn.get(JSON.stringify(feeds)) as { n: number };
    return Number(row.n);
  }

  start(id: number): void {
    this.#start.run(id);
  }

  retryAt(id: number, notBeforeMs: number): void {
    this.#setState.run("pending", notBeforeMs, id);
  }

  settle(id: number, outcome: string, nowMs: number): void {
    this.#settle.run(outcome, nowMs, id);
    this.#prune.run();
  }

  /** Forgets the settled commands of a stream made anew: its new messages reuse their sequences. */
  forgetSettled(stream: string): void {
    this.#db.prepare("DELETE FROM commands WHERE stream = ? AND state = 'settled'").run(stream);
  }

  /** Whether the feed holds a message of the same stream newer than `streamSequence` (it supersedes it). */
  newerInFeed(feed: string, stream: string, streamSequence: number): boolean {
    return this.#newerInFeed.get(feed, stream, streamSequence) !== undefined;
  }
}
