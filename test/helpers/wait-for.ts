/**
 * Every way a test or a fault scenario lets real time pass, in one place (biome-plugins/test-time.grit,
 * checked by test/unit/helpers/test-time-guard.test.ts, keeps raw timers out of every other file under
 * test/ and faults/). Time the code under test reads comes from its injected clock: `manualClock()`
 * (manual-clock.ts) when the test moves it.
 *
 * - `waitFor`: wait for something to happen (a bounded poll: the bound only fails a test that hangs).
 * - `withDeadline`: bound a promise that might never settle.
 * - `quietFor`: prove that something does NOT happen, where nothing positive can show it.
 * - `holdFor`: keep a state for a while because the duration is the scenario itself.
 * - `repeatEvery`: an input that comes on a period (a simulated device's heartbeat).
 */

/** A wait ran past its bound: what was waited for did not happen (or a promise never settled). */
export class WaitTimeoutError extends Error {
  readonly code = "EDGE_TEST_WAIT_TIMEOUT";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WaitTimeoutError";
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function checkedDuration(ms: number, helper: string, why: string): number {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${helper}(${ms}, "${why}"): not a duration in ms`);
  if (why.trim() === "") throw new RangeError(`${helper}(${ms}): say why the time must pass`);
  return ms;
}

/**
 * Polls until `check` returns a value (not undefined/false) or the deadline passes. The deadline
 * only bounds a failing test; passing tests never depend on how fast the machine is. A check that
 * throws is asked again (the error is reported if the deadline passes).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > until) {
      throw new WaitTimeoutError(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`,
        { cause: lastError },
      );
    }
    await pause(intervalMs);
  }
}

/** `promise`, or a WaitTimeoutError naming `what` once `ms` pass first: a bound on a hang, never a wait. */
export function withDeadline<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeoutError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Lets `ms` pass to prove a negative: that nothing (a duplicate, a false OFFLINE) arrives in that
 * time. Only where nothing positive can show it; where the system gives a marker (send a later
 * message, wait for it: everything before it was handled), wait for the marker instead.
 */
export function quietFor(ms: number, why: string): Promise<void> {
  return pause(checkedDuration(ms, "quietFor", why));
}

/**
 * Keeps a state for `ms` because the duration is the scenario itself: a broker kept away, the
 * spacing of faults in a soak, a service manager's restart delay. Never to let something happen:
 * for that, wait for it (`waitFor`).
 */
export function holdFor(ms: number, why: string): Promise<void> {
  return pause(checkedDuration(ms, "holdFor", why));
}

/**
 * Runs `action` every `ms` until the returned function is called: an input that comes on a period
 * because the system under test expects it to (a simulated device's heartbeat), never a poll (that
 * is `waitFor`).
 */
export function repeatEvery(ms: number, why: string, action: () => void): () => void {
  const timer = setInterval(action, checkedDuration(ms, "repeatEvery", why));
  return () => clearInterval(timer);
}
