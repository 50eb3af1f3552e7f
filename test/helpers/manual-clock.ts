import { type Cancel, type Clock, type CronSchedule, systemClock, type Timers } from "../../src/runtime/clock.ts";

/**
 * How tests fake time: the code under test takes a `Clock` (src/runtime/clock.ts), and a test gives
 * it one of these. `manualClock()` when the test moves time itself; `fixedWallClock()` when the code
 * must run on real timers (reconnects, retries against real servers) but stamp a time the test knows.
 * vitest's fake timers are not used (biome-plugins/test-time.grit refuses them).
 */

/** A clock whose time moves only when the test says: timers fire in due order as it advances. */
export interface ManualClock extends Clock {
  readonly timers: Timers;
  /** Moves time forward, firing every timer that falls due on the way (bounded: 100 000 fires). */
  advance(ms: number): void;
  /**
   * The host's clock stepped (an operator, NTP): wall time jumps by `deltaMs` (negative: back);
   * monotonic time and the timers, which run on it, do not move.
   */
  shiftWallClock(deltaMs: number): void;
  /** Fires one tick of every cron schedule running now (a cron tick is the test's to choose). */
  tickCron(): void;
  /** Timers and schedules waiting. */
  readonly pending: number;
  /** Timers set so far (each `after` and `every`): code that re-arms a timer shows it here. */
  readonly armed: number;
}

export function manualClock(
  startMs = Date.parse("2026-11-22T10:00:00Z"),
  options: {
    /** Each reading (now, monotonicMs) first moves time this far: a busy machine between two reads. */
    readonly stepPerReadMs?: number;
  } = {},
): ManualClock {
  /** Monotonic time: what timers run on. Wall time is this plus the steps the test made. */
  let nowMs = startMs;
  let wallOffsetMs = 0;
  let nextId = 0;
  let armed = 0;
  const due = new Map<number, { atMs: number; everyMs: number | null; callback: () => void }>();
  const crons = new Set<{ onTick: () => void }>();
  const schedule = (delayMs: number, everyMs: number | null, callback: () => void): Cancel => {
    const id = nextId++;
    armed += 1;
    due.set(id, { atMs: nowMs + Math.max(0, delayMs), everyMs, callback });
    return () => void due.delete(id);
  };
  const timers: Timers = {
    after: (delayMs, callback) => schedule(delayMs, null, callback),
    every: (everyMs, callback) => schedule(everyMs, everyMs, callback),
    cron(_expression, handlers): CronSchedule {
      const entry = { onTick: handlers.onTick };
      crons.add(entry);
      return { intervalMs: 60_000, stop: () => void crons.delete(entry) };
    },
  };
  const stepPerReadMs = options.stepPerReadMs ?? 0;
  const clock: ManualClock = {
    now() {
      if (stepPerReadMs > 0) clock.advance(stepPerReadMs);
      return nowMs + wallOffsetMs;
    },
    monotonicMs() {
      if (stepPerReadMs > 0) clock.advance(stepPerReadMs);
      return nowMs;
    },
    timers,
    get pending() {
      return due.size + crons.size;
    },
    get armed() {
      return armed;
    },
    advance(ms) {
      const until = nowMs + ms;
      for (let fired = 0; fired < 100_000; fired++) {
        let nextId: number | null = null;
        let next: { atMs: number; everyMs: number | null; callback: () => void } | null = null;
        for (const [id, timer] of due)
          if (timer.atMs <= until && (next === null || timer.atMs < next.atMs)) [nextId, next] = [id, timer];
        if (next === null || nextId === null) break;
        nowMs = next.atMs;
        if (next.everyMs === null) due.delete(nextId);
        else next.atMs += next.everyMs;
        next.callback();
      }
      nowMs = until;
    },
    shiftWallClock(deltaMs) {
      wallOffsetMs += deltaMs;
    },
    tickCron() {
      for (const entry of [...crons]) entry.onTick();
    },
  };
  return clock;
}

/** The system's monotonic time and timers, and a wall clock that stands at `wallMs`. */
export function fixedWallClock(wallMs: number): Clock {
  return { ...systemClock, now: () => wallMs };
}

/**
 * Lets every promise callback and I/O callback that is ready run, a few event-loop turns over:
 * what the code under test does between two moves of a manual clock. No time passes on it.
 */
export async function settle(turns = 5): Promise<void> {
  for (let turn = 0; turn < turns; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}
