import { createTask } from "node-cron";

/** Stops a timer or a schedule; calling it again does nothing. */
export type Cancel = () => void;

/** A cron schedule running on a clock's timers. */
export interface CronSchedule {
  /** Milliseconds between its next two ticks (0 when it has fewer than two): what jitter is spread over. */
  readonly intervalMs: number;
  stop(): void;
}

/**
 * Every wait of an agent: one-off timers, repeating timers and cron schedules. None keeps the
 * process alive by itself. A test gives fake ones and moves time by hand; a process hosting many
 * agents gives them all the same real ones.
 */
export interface Timers {
  after(delayMs: number, callback: () => void): Cancel;
  every(everyMs: number, callback: () => void): Cancel;
  /**
   * Calls `onTick` at each time `expression` names (node-cron syntax, seconds field allowed), and
   * `onMissed` when a tick came too late to run (the process was too busy).
   */
  cron(expression: string, handlers: { onTick: () => void; onMissed?: () => void }): CronSchedule;
}

/** Time as the agent sees it: injected everywhere so tests can drive it. */
export interface Clock {
  /**
   * Wall-clock milliseconds since the epoch: for stamping what happened, never for deciding when
   * something is due. The host's clock may be stepped back or forward at any moment.
   */
  now(): number;
  /**
   * Monotonic milliseconds (from an arbitrary origin): never steps with the host's clock. Every
   * duration, lease, timeout and expiry is measured on it, as the timers are.
   */
  monotonicMs(): number;
  /** The clock's timers; a clock without its own runs on the real ones (`systemTimers`). */
  readonly timers?: Timers;
}

export const systemTimers: Timers = {
  after(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
  every(everyMs, callback) {
    const timer = setInterval(callback, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  },
  cron(expression, handlers) {
    const task = createTask(expression, () => handlers.onTick(), { unref: true });
    const [nextRun, runAfter] = task.getNextRuns(2);
    task.on("execution:missed", () => handlers.onMissed?.());
    void task.start();
    return {
      intervalMs: nextRun && runAfter ? runAfter.getTime() - nextRun.getTime() : 0,
      stop() {
        void task.stop();
        void task.destroy();
      },
    };
  },
};

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicMs: () => performance.now(),
  timers: systemTimers,
};

/** The timers `clock` runs on. */
export function timersOf(clock: Clock): Timers {
  return clock.timers ?? systemTimers;
}

/** Resolves after `delayMs` on `clock`'s timers, or at once when `signal` aborts. */
export function sleepOn(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const cancel = timersOf(clock).after(delayMs, () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    });
    const onAbort = (): void => {
      cancel();
      resolve();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
