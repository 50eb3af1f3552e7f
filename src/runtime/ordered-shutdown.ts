import { type Cancel, type Clock, timersOf } from "./clock.ts";
import type { Logger } from "./logger.ts";

/** One thing to stop, named for the log line an operator reads when it hangs. */
export interface ShutdownStep {
  readonly name: string;
  readonly stop: () => Promise<void> | void;
}

/**
 * Runs the steps in order within one overall budget. A step that fails or outlasts what is left
 * of the budget is logged and left behind, and the next one still runs: a hung download or a
 * request to a stream that does not exist must not keep the outbox from closing its database, nor
 * the process from exiting 0 when it was asked to stop. The budget is shared, so the whole
 * shutdown takes at most `budgetMs` plus the last step's own settling.
 */
export async function runShutdownSteps(
  steps: readonly ShutdownStep[],
  options: { budgetMs: number; clock: Clock; logger: Logger },
): Promise<{ late: string[]; failed: string[] }> {
  const { clock } = options;
  const deadline = clock.monotonicMs() + options.budgetMs;
  const late: string[] = [];
  const failed: string[] = [];
  for (const step of steps) {
    const remainingMs = Math.max(0, deadline - clock.monotonicMs());
    let cancelLate: Cancel = () => undefined;
    const outcome = await Promise.race([
      Promise.resolve()
        .then(step.stop)
        .then(
          () => "stopped" as const,
          (error: unknown) => {
            options.logger.error({ err: error, step: step.name }, "error while stopping; going on");
            return "failed" as const;
          },
        ),
      new Promise<"late">((resolve) => (cancelLate = timersOf(clock).after(remainingMs, () => resolve("late")))),
    ]);
    cancelLate();
    if (outcome === "late") {
      options.logger.warn({ step: step.name, budgetMs: options.budgetMs }, "did not stop in time; leaving it behind");
      late.push(step.name);
    } else if (outcome === "failed") {
      failed.push(step.name);
    }
  }
  return { late, failed };
}
