import type { TaskRun } from "./task-run.ts";

/** A running task as `status` shows it. */
export interface RunningTaskStatus {
  readonly taskId: string;
  /** Null while it is being started. */
  readonly pid: number | null;
  /** When it started (null while it is being started). */
  readonly since: string | null;
}

/** The tasks running on this agent now, by id: what a cancel reaches and what `status` lists. */
export class RunningTasks {
  readonly #runs = new Map<string, TaskRun>();

  add(taskId: string, run: TaskRun): void {
    this.#runs.set(taskId, run);
  }

  remove(taskId: string): void {
    this.#runs.delete(taskId);
  }

  get(taskId: string): TaskRun | undefined {
    return this.#runs.get(taskId);
  }

  list(): RunningTaskStatus[] {
    return [...this.#runs].map(([taskId, run]) => ({
      taskId,
      pid: run.pid,
      since: run.startedAtMs === null ? null : new Date(run.startedAtMs).toISOString(),
    }));
  }
}
