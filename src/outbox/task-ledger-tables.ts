import type { DatabaseSync, StatementSync } from "node:sqlite";

/**
 * The remote tasks' own tables, beside the command inbox in the outbox's database (DESIGN, "Remote
 * tasks", "Exactly once"):
 * - `task_runs`: every task id this machine took, with the sha256 of what the task asked and the
 *   event id its one result is (or will be) stored under; unique by task id, so a task id runs at
 *   most once, whatever stream, subject or copy it comes in. `marker` is the `EDGE_TASK_ID` value its
 *   processes carry while they may be running (null once they are gone): what a start after a crash
 *   looks for, to stop what the crash left running. Kept `TASK_RUNS_KEPT_MS` (30 days).
 * - `task_cancels`: cancels that came before their task (queued in the inbox, or not read yet),
 *   until the task comes or the cancel expires.
 */
export const TASK_RUNS_KEPT_MS = 30 * 24 * 3_600_000;

export interface TaskRunRecord {
  readonly taskId: string;
  readonly bodySha256: string;
  readonly resultEventId: string;
  /** The stored message it was taken from (`<stream>:<sequence>`). */
  readonly commandRef: string;
  readonly marker: string | null;
  readonly recordedAtMs: number;
}

export interface KeptCancel {
  readonly taskId: string;
  readonly reason: string | null;
  /** The cancel command's event id. */
  readonly causationId: string;
  readonly expiresAtMs: number;
}

interface RawRun {
  task_id: string;
  body_sha256: string;
  result_event_id: string;
  command_ref: string;
  marker: string | null;
  recorded_at_ms: number;
}

const toRun = (raw: RawRun): TaskRunRecord => ({
  taskId: raw.task_id,
  bodySha256: raw.body_sha256,
  resultEventId: raw.result_event_id,
  commandRef: raw.command_ref,
  marker: raw.marker,
  recordedAtMs: Number(raw.recorded_at_ms),
});

/** SQL for the task tables; every method runs inside the caller's transaction when there is one. */
export class TaskLedgerTables {
  readonly #find: StatementSync;
  readonly #insert: StatementSync;
  readonly #setMarker: StatementSync;
  readonly #withMarkers: StatementSync;
  readonly #pruneRuns: StatementSync;
  readonly #keepCancel: StatementSync;
  readonly #findCancel: StatementSync;
  readonly #dropCancel: StatementSync;
  readonly #pruneCancels: StatementSync;

  static readonly schema = `
    CREATE TABLE IF NOT EXISTS task_runs (
      task_id TEXT PRIMARY KEY,
      body_sha256 TEXT NOT NULL,
      result_event_id TEXT NOT NULL,
      command_ref TEXT NOT NULL,
      marker TEXT,
      recorded_at_ms INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS task_runs_by_age ON task_runs (recorded_at_ms);
    CREATE TABLE IF NOT EXISTS task_cancels (
      task_id TEXT PRIMARY KEY,
      reason TEXT,
      causation_id TEXT NOT NULL,
      expires_at_ms INTEGER NOT NULL
    );
  `;

  constructor(db: DatabaseSync) {
    this.#find = db.prepare("SELECT * FROM task_runs WHERE task_id = ?");
    this.#insert = db.prepare(
      `INSERT INTO task_runs (task_id, body_sha256, result_event_id, command_ref, marker, recorded_at_ms)
       VALUES (?, ?, ?, ?, NULL, ?)`,
    );
    this.#setMarker = db.prepare("UPDATE task_runs SET marker = ? WHERE task_id = ?");
    this.#withMarkers = db.prepare("SELECT * FROM task_runs WHERE marker IS NOT NULL ORDER BY recorded_at_ms");
    // A task whose processes may still run is kept whatever its age: its marker is what stops them.
    this.#pruneRuns = db.prepare("DELETE FROM task_runs WHERE recorded_at_ms < ? AND marker IS NULL");
    this.#keepCancel = db.prepare(
      `INSERT INTO task_cancels (task_id, reason, causation_id, expires_at_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT(task_id) DO UPDATE SET reason = excluded.reason, causation_id = excluded.causation_id,
         expires_at_ms = max(task_cancels.expires_at_ms, excluded.expires_at_ms)`,
    );
    this.#findCancel = db.prepare("SELECT * FROM task_cancels WHERE task_id = ? AND expires_at_ms > ?");
    this.#dropCancel = db.prepare("DELETE FROM task_cancels WHERE task_id = ?");
    this.#pruneCancels = db.prepare("DELETE FROM task_cancels WHERE expires_at_ms <= ?");
  }

  find(taskId: string): TaskRunRecord | null {
    const raw = this.#find.get(taskId) as RawRun | undefined;
    return raw === undefined ? null : toRun(raw);
  }

  insert(record: Omit<TaskRunRecord, "marker">): void {
    this.#insert.run(record.taskId, record.bodySha256, record.resultEventId, record.commandRef, record.recordedAtMs);
  }

  setMarker(taskId: string, marker: string | null): void {
    this.#setMarker.run(marker, taskId);
  }

  withMarkers(): TaskRunRecord[] {
    return (this.#withMarkers.all() as unknown as RawRun[]).map(toRun);
  }

  pruneRuns(olderThanMs: number): void {
    this.#pruneRuns.run(olderThanMs);
  }

  keepCancel(cancel: KeptCancel): void {
    this.#keepCancel.run(cancel.taskId, cancel.reason, cancel.causationId, cancel.expiresAtMs);
  }

  findCancel(taskId: string, nowMs: number): KeptCancel | null {
    const raw = this.#findCancel.get(taskId, nowMs) as
      | { task_id: string; reason: string | null; causation_id: string; expires_at_ms: number }
      | undefined;
    if (raw === undefined) return null;
    return {
      taskId: raw.task_id,
      reason: raw.reason,
      causationId: raw.causation_id,
      expiresAtMs: Number(raw.expires_at_ms),
    };
  }

  dropCancel(taskId: string): void {
    this.#dropCancel.run(taskId);
  }

  pruneCancels(nowMs: number): void {
    this.#pruneCancels.run(nowMs);
  }
}
