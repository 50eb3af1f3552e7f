import { type Cancel, type Clock, timersOf } from "./clock.ts";

/**
 * Calls `onIdle` once each time work stops: `progress` (a count that grows with the work done)
 * moved during one period of `periodMs` and then stood still for a whole one. Never while work
 * goes on, never twice for one quiet spell, never for a process that has not worked at all.
 */
export function watchForIdle(options: {
  readonly clock: Clock;
  readonly periodMs: number;
  readonly progress: () => number;
  readonly onIdle: () => void;
}): Cancel {
  let last = options.progress();
  let worked = false;
  return timersOf(options.clock).every(options.periodMs, () => {
    const now = options.progress();
    if (now !== last) {
      last = now;
      worked = true;
      return;
    }
    if (!worked) return;
    worked = false;
    options.onIdle();
  });
}
