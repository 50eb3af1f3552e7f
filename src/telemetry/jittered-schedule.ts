import { createHash } from "node:crypto";
import { validate } from "node-cron";
import { EdgeError } from "../errors/index.ts";
import { type Cancel, echoInput, systemTimers, type Timers } from "../runtime/index.ts";

export class InvalidScheduleError extends EdgeError {
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
 * Runs `work` on a cron schedule of `timers`, `offsetMs` after each tick. A run still going when
 * the next is due makes that next one skip (counted): slow collection never stacks up. A tick that
 * came too late (the event loop was too busy to fire on time) is counted too.
 */
export function startJitteredSchedule(options: {
  expression: string;
  /** Fixed delay after each tick; or derive it from `jitter`. */
  offsetMs?: number;
  /** The machine's offset inside a window of at most `maxMs`, and never more than half the interval. */
  jitter?: { key: string; maxMs: number };
  /** Never rejects: a run logs its own failure (both of telemetry's do); the schedule only counts runs. */
  work: () => Promise<void>;
  onSkip?: (reason: "overlap" | "missed") => void;
  /** Default: the real timers. */
  timers?: Timers;
}): JitteredSchedule & { readonly offsetMs: number } {
  validateCronExpression(options.expression);
  const timers = options.timers ?? systemTimers;
  const counters: ScheduleCounters = { runs: 0, skippedOverlaps: 0, missedRuns: 0 };
  let running = false;
  const pending = new Set<Cancel>();
  const schedule = timers.cron(options.expression, {
    onTick() {
      if (running) {
        counters.skippedOverlaps += 1;
        options.onSkip?.("overlap");
        return;
      }
      running = true;
      const cancel = timers.after(offsetMs, () => {
        pending.delete(cancel);
        counters.runs += 1;
        void options.work().finally(() => {
          running = false;
        });
      });
      pending.add(cancel);
    },
    onMissed() {
      counters.missedRuns += 1;
      options.onSkip?.("missed");
    },
  });
  const offsetMs =
    options.offsetMs ??
    (options.jitter ? jitterOffsetMs(options.jitter.key, Math.min(options.jitter.maxMs, schedule.intervalMs / 2)) : 0);
  return {
    counters,
    offsetMs,
    stop() {
      schedule.stop();
      for (const cancel of pending) cancel();
      pending.clear();
    },
  };
}
