import type { Logger } from "../runtime/index.ts";
import { type Cancel, systemTimers, type Timers } from "../runtime/index.ts";

/**
 * Presence: `{}` on `machine.{id}.heartbeat` over core NATS every interval while connected.
 * Never buffered: a heartbeat from the past says nothing about the present.
 */
export interface Heartbeat {
  start(): void;
  stop(): void;
  /** One beat now, off the schedule: the link just came up and presence should show at once. */
  beatNow(): void;
  /** Takes effect at once: the next beat comes one new interval from now. */
  setIntervalSeconds(seconds: number): void;
  readonly intervalSeconds: number;
}

export function createHeartbeat(options: {
  intervalSeconds: number;
  /** Sends one beat; returns false when there is no link to send it on. */
  beat: () => boolean;
  /** Work that rides on the same tick (hostname check, status snapshot). */
  onTick?: () => void;
  logger: Logger;
  /** Default: the real timers. */
  timers?: Timers;
}): Heartbeat {
  const timers = options.timers ?? systemTimers;
  let intervalSeconds = options.intervalSeconds;
  let cancelTimer: Cancel | undefined;
  let running = false;

  const tick = (): void => {
    try {
      if (!options.beat()) options.logger.debug("heartbeat skipped: not connected");
      options.onTick?.();
    } catch (error) {
      options.logger.warn({ err: error }, "heartbeat failed");
    }
  };
  const schedule = (): void => {
    cancelTimer?.();
    cancelTimer = timers.every(intervalSeconds * 1000, tick);
  };

  return {
    get intervalSeconds() {
      return intervalSeconds;
    },
    start() {
      running = true;
      tick();
      schedule();
    },
    beatNow() {
      try {
        options.beat();
      } catch (error) {
        options.logger.warn({ err: error }, "heartbeat failed");
      }
    },
    stop() {
      running = false;
      cancelTimer?.();
      cancelTimer = undefined;
    },
    setIntervalSeconds(seconds) {
      if (!Number.isInteger(seconds) || seconds < 1)
        throw new RangeError(`heartbeat interval must be a whole number of seconds >= 1, got ${seconds}`);
      intervalSeconds = seconds;
      if (running) schedule();
    },
  };
}
