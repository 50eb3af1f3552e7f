import { createHash } from "node:crypto";
import { createTask, validate, type ScheduledTask } from "node-cron";
import { echoInput } from "../runtime/echo.ts";

export class InvalidScheduleError extends Error {
  readonly code = "EDGE_INVALID_SCHEDULE";
  constructor(expression: string) {
    super(`${echoInput(expression)} is not a cron expression (e.g. "0 * * * * *": seconds field allowed)`);
    this.name = "InvalidScheduleError";
  }
}

export function validateCronExpression(expression: string): void {
  if (!validate(expression)) throw new InvalidScheduleError(expression);
}

/**
 * Spreads a fleet over the jitter window: each machine runs at its own fixed offset after every
 * cron tick, derived from its id. Fixed, not drawn per tick, so one machine's samples stay evenly
 * spaced (rates stay honest) while a thousand machines do not all report in the same second.
 */
export function jitterOffsetMs(machineId: string, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  const digest = createHash("sha256").update(machineId).digest();
  return digest.readUInt32BE(0) % Math.floor(jitterMs);
}

export interface ScheduleCounters {
  runs: number;
  skippedOverlaps: number;
  missedRuns: number;
}

export interface JitteredSchedule {
  stop(): void;
  readonly counters: ScheduleCounters;
}

/**
 * Runs `work` on a node-cron schedule, `offsetMs` after each tick. A run still going when the next
 * is due makes that next one skip (counted): slow collection never stacks up. node-cron's own
 * `execution:missed` (the event loop was too busy to fire on time) is counted too.
 */
export function startJitteredSchedule(options: {
  expression: string;
  /** Fixed delay after each tick; or derive it from `jitter`. */
  offsetMs?: number;
  /** The machine's offset inside a window of at most `maxMs`, and never more than half the interval. */
  jitter?: { key: string; maxMs: number };
  work: () => Promise<void>;
  onSkip?: (reason: "overlap" | "missed") => void;
}): JitteredSchedule & { readonly offsetMs: number } {
  validateCronExpression(options.expression);
  const counters: ScheduleCounters = { runs: 0, skippedOverlaps: 0, missedRuns: 0 };
  let running = false;
  const pending = new Set<NodeJS.Timeout>();
  const task: ScheduledTask = createTask(options.expression, () => {
    if (running) {
      counters.skippedOverlaps += 1;
      options.onSkip?.("overlap");
      return;
    }
    running = true;
    const timer = setTimeout(() => {
      pending.delete(timer);
      counters.runs += 1;
      options.work().finally(() => {
        running = false;
      });
    }, offsetMs);
    pending.add(timer);
  }, { unref: true });
  const [nextRun, runAfter] = task.getNextRuns(2);
  const intervalMs = nextRun && runAfter ? runAfter.getTime() - nextRun.getTime() : 0;
  const offsetMs = options.offsetMs ?? (options.jitter ? jitterOffsetMs(options.jitter.key, Math.min(options.jitter.maxMs, intervalMs / 2)) : 0);
  task.on("execution:missed", () => {
    counters.missedRuns += 1;
    options.onSkip?.("missed");
  });
  void task.start();
  return {
    counters,
    offsetMs,
    stop() {
      void task.stop();
      void task.destroy();
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
    },
  };
}
