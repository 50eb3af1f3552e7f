import type { Clock } from "./clock.ts";
import type { Logger } from "./logger.ts";

/**
 * A fault that is retried until it goes away (a full disk, tried again every few seconds) says so
 * twice in the log: one error line when it starts and one info line when it ends, with how long it
 * lasted and how often it repeated; the repeats in between are debug lines. `message` is what the
 * fault is now, for status.
 */
export class FaultLatch {
  readonly #logger: Logger;
  readonly #clock: Clock;
  #sinceMs: number | null = null;
  #repeats = 0;
  #message: string | null = null;

  constructor(logger: Logger, clock: Clock) {
    this.#logger = logger;
    this.#clock = clock;
  }

  get message(): string | null {
    return this.#message;
  }

  get failing(): boolean {
    return this.#sinceMs !== null;
  }

  /** `what` failed; `consequence` says what happens meanwhile (logged once, when the fault starts). */
  fail(what: string, error: unknown, consequence: string): void {
    this.#message = `${what}: ${error instanceof Error ? error.message : String(error)}`;
    if (this.#sinceMs === null) {
      this.#sinceMs = this.#clock.now();
      this.#repeats = 0;
      this.#logger.error({ err: error }, `${what}; ${consequence}`);
      return;
    }
    this.#repeats += 1;
    this.#logger.debug({ err: error, repeats: this.#repeats }, what);
  }

  /** The fault is over: one line saying so (nothing when there was no fault). */
  recover(message: string): void {
    if (this.#sinceMs === null) return;
    this.#logger.info(
      {
        faultSeconds: Math.round((this.#clock.now() - this.#sinceMs) / 1000),
        repeats: this.#repeats,
        lastError: this.#message,
      },
      message,
    );
    this.#sinceMs = null;
    this.#message = null;
  }
}
