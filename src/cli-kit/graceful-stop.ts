import type { Logger } from "../runtime/index.ts";
import { type Clock, timersOf } from "../runtime/index.ts";
import { ExitCode } from "./exit-codes.ts";

/**
 * One kill often arrives twice within this (to the process and to its group, as `timeout` sends
 * it; `conf`'s atomic writer re-raises the signal it intercepted, at once): only a signal that
 * comes later is an operator insisting.
 */
const SAME_KILL_MS = 1_000;

export interface GracefulStopOptions {
  readonly logger: Logger;
  /** The program's name in the log lines ("edge-agent", "edge-bridge"). */
  readonly program: string;
  /** After this, the process leaves with 1 whatever is still stopping. */
  readonly deadlineMs: number;
  /** Stops the program's work (given its own budget, shorter than the deadline). */
  stop(): Promise<void>;
  /** Ends the process with this code (process.exit, or the promise the caller's main awaits). */
  leave(code: number): void;
  readonly clock: Clock;
}

/**
 * How both programs stop: once, whatever asked (a signal, a restart, a fatal error), within a
 * deadline; a failure while stopping, or the deadline passing, leaves with 1. The timers never hold
 * the process (runtime/clock.ts).
 */
export class GracefulStop {
  readonly #options: GracefulStopOptions;
  #stoppingSinceMs: number | null = null;

  constructor(options: GracefulStopOptions) {
    this.#options = options;
  }

  get stopping(): boolean {
    return this.#stoppingSinceMs !== null;
  }

  /** Stops once, then runs `then` (which leaves); does nothing while already stopping. */
  stopThen(then: () => Promise<void> | void): void {
    if (this.#stoppingSinceMs !== null) return;
    const { logger, deadlineMs, clock } = this.#options;
    this.#stoppingSinceMs = clock.monotonicMs();
    timersOf(clock).after(deadlineMs, () => {
      logger.error({ deadlineMs }, "shutdown took too long: leaving now");
      this.#options.leave(ExitCode.failure);
    });
    this.#options
      .stop()
      .then(then)
      .catch((error: unknown) => {
        logger.error({ err: error }, "error while stopping");
        this.#options.leave(ExitCode.failure);
      });
  }

  /**
   * For SIGTERM and SIGINT: the first stops, then runs `then`; a second one while stopping leaves
   * at once with 1 (unless it is the same kill arriving twice).
   */
  onSignal(then: () => Promise<void> | void): (signal: NodeJS.Signals) => void {
    return (signal) => {
      const { logger, program, clock } = this.#options;
      if (this.#stoppingSinceMs !== null) {
        if (clock.monotonicMs() - this.#stoppingSinceMs < SAME_KILL_MS) return;
        logger.warn({ signal }, "second signal while stopping: leaving now");
        this.#options.leave(ExitCode.failure);
        return;
      }
      logger.info({ signal }, `stopping ${program}`);
      this.stopThen(then);
    };
  }
}
