import * as z from "zod";
import { type CommandHandler, done } from "../capability/index.ts";
import { TaskCancel } from "../contracts/index.ts";
import type { TaskLedger } from "../outbox/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import type { RunningTasks } from "./running-tasks.ts";

/** How long a cancel waits for a task that has not come yet (less when the cancel itself expires sooner). */
export const KEEP_CANCEL_MS = 24 * 3_600_000;

/** A cancel as taken: its fields, and the `expiresAt` signed with it. */
const TaskCancelTaken = TaskCancel.extend({ expiresAt: z.iso.datetime({ offset: true }).optional() });
type TaskCancelTaken = z.infer<typeof TaskCancelTaken>;

/**
 * The handler of cancels (`machine.{id}.task.cancel`, `machine.all.fleet-task.cancel`), on a route
 * of their own so a cancel never waits behind tasks: a running task is stopped (its whole tree) and
 * ends CANCELLED; one already taken (ended, or running on another route's turn) is left as it is;
 * one not taken yet is cancelled when it comes (the cancel is kept until it expires, 24 h at most).
 * A cancel's own refusal reports nothing: it has no result of its own, only the task's.
 */
export function cancelHandler(options: {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly ledger: TaskLedger;
  readonly running: RunningTasks;
}): CommandHandler<TaskCancelTaken> {
  const { clock, logger, ledger, running } = options;
  return {
    what: "task cancel",
    schema: TaskCancelTaken,
    rejection: () => null,
    async handle(cancel, delivery) {
      const { taskId } = cancel;
      const reason = cancel.reason ?? null;
      const active = running.get(taskId);
      if (active) {
        logger.info({ taskId, cancel: delivery.causationId, reason }, "cancelling a running task");
        active.cancel(reason ?? "no reason given");
        return done();
      }
      const taken = ledger.find(taskId);
      if (taken) {
        logger.info(
          { taskId, cancel: delivery.causationId, resultEventId: taken.resultEventId },
          "cancel for a task that already ended: nothing to do",
        );
        return done();
      }
      const ends = [
        clock.now() + KEEP_CANCEL_MS,
        delivery.expiresAtMs ?? Number.POSITIVE_INFINITY,
        cancel.expiresAt === undefined ? Number.POSITIVE_INFINITY : Date.parse(cancel.expiresAt),
      ];
      const expiresAtMs = Math.min(...ends);
      ledger.keepCancel({ taskId, reason, causationId: delivery.causationId, expiresAtMs });
      logger.info(
        { taskId, cancel: delivery.causationId, until: new Date(expiresAtMs).toISOString() },
        "cancel kept for a task not taken yet: it is cancelled when it comes",
      );
      return done();
    },
  };
}
