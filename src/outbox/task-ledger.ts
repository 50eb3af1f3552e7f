import type { Clock } from "../runtime/index.ts";
import type { OutboxStore } from "./sqlite-store.ts";
import { type KeptCancel, TASK_RUNS_KEPT_MS, type TaskRunRecord } from "./task-ledger-tables.ts";

export type { KeptCancel, TaskRunRecord } from "./task-ledger-tables.ts";

/** What recording a task's id found. */
export type TaskRecording =
  /** The id is this task's now; `cancel` is a cancel that came before it (taken: it applies to this task). */
  | { readonly kind: "recorded"; readonly cancel: KeptCancel | null }
  /** The id was taken before, by this record (the same task again, or another with its id). */
  | { readonly kind: "known"; readonly record: TaskRunRecord };

/**
 * The durable record of remote tasks on this machine (task-ledger-tables.ts): which task ids were
 * taken, so a task id runs at most once, and the cancels that came before their task. In the
 * outbox's database; every method throws `OutboxStorageUnavailableError` (or the database's own
 * error) when it cannot be written, and then nothing changed.
 */
export interface TaskLedger {
  /**
   * Takes the id for this task unless it was taken before, together with a cancel kept for it, in
   * one transaction; records older than 30 days (whose processes are gone) are forgotten.
   */
  record(entry: {
    readonly taskId: string;
    readonly bodySha256: string;
    readonly resultEventId: string;
    readonly commandRef: string;
  }): TaskRecording;
  find(taskId: string): TaskRunRecord | null;
  /** The marker the task's processes carry while they may run; null once they are gone. */
  setMarker(taskId: string, marker: string | null): void;
  /** Tasks whose processes may still run: after a crash, what is left to stop. */
  withMarkers(): TaskRunRecord[];
  /** Keeps a cancel for a task not taken yet (until `expiresAtMs`; a later one for the same id replaces it). */
  keepCancel(cancel: KeptCancel): void;
}

export function createTaskLedger(access: { tables(): OutboxStore; readonly clock: Clock }): TaskLedger {
  const { clock } = access;
  return {
    record(entry) {
      const open = access.tables();
      let recording: TaskRecording = { kind: "recorded", cancel: null };
      open.transaction(() => {
        const nowMs = clock.now();
        open.tasks.pruneRuns(nowMs - TASK_RUNS_KEPT_MS);
        open.tasks.pruneCancels(nowMs);
        const known = open.tasks.find(entry.taskId);
        if (known) {
          recording = { kind: "known", record: known };
          return;
        }
        open.tasks.insert({ ...entry, recordedAtMs: nowMs });
        const cancel = open.tasks.findCancel(entry.taskId, nowMs);
        if (cancel) open.tasks.dropCancel(entry.taskId);
        recording = { kind: "recorded", cancel };
      });
      return recording;
    },
    find: (taskId) => access.tables().tasks.find(taskId),
    setMarker(taskId, marker) {
      const open = access.tables();
      open.transaction(() => open.tasks.setMarker(taskId, marker));
    },
    withMarkers: () => access.tables().tasks.withMarkers(),
    keepCancel(cancel) {
      const open = access.tables();
      open.transaction(() => {
        open.tasks.pruneCancels(clock.now());
        open.tasks.keepCancel(cancel);
      });
    },
  };
}
