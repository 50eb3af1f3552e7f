import { createHash, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import * as z from "zod";
import {
  type CommandDelivery,
  type CommandHandler,
  type CommandOutcome,
  done,
  doneThen,
  reject,
} from "../capability/index.ts";
import { EventType, fleetSubjects, TASK_LIMITS, TaskCommand, type TaskResult } from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { TaskLedger } from "../outbox/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import type { TaskSettings } from "../settings/index.ts";
import { canonicalJson } from "../trust/index.ts";
import type { RunningTasks } from "./running-tasks.ts";
import { confinedSpec } from "./sandbox.ts";
import { launchSpec, newMarker, taskEnvironment } from "./task-launch.ts";
import { expiryRefusal, policyRefusal, selectorVerdict } from "./task-policy.ts";
import { endWithoutRun, taskIdOf, taskResultEvent } from "./task-results.ts";
import { TaskRun } from "./task-run.ts";
import { chooseWorkingDir, taskFolder } from "./working-dir.ts";

/** A task as taken: its fields, and the `expiresAt` signed with it (the other claims are the gate's). */
export const TaskCommandTaken = TaskCommand.extend({ expiresAt: z.iso.datetime({ offset: true }).optional() });
export type TaskCommandTaken = z.infer<typeof TaskCommandTaken>;

export interface TaskHandlerOptions {
  readonly dataDir: string;
  /** What a confined task must not read: the agent's config and data dirs (credentials, settings, outbox). */
  readonly hiddenWhenConfined: readonly string[];
  readonly settings: TaskSettings;
  readonly platform: NodeJS.Platform;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  readonly ledger: TaskLedger;
  readonly running: RunningTasks;
  /** The machine's tags now (they may change with the remote configuration). */
  readonly tags: () => Readonly<Record<string, string>>;
  /** The environment tasks start from (the agent's own variables are taken out). */
  readonly environment: Readonly<Record<string, string | undefined>>;
  /** Why confined tasks cannot run here, or null (asked only under `tasks.confine: working-dir`). */
  readonly confinementProblem: () => Promise<string | null>;
}

/** What a task asks, as one hash: the same task sent again (its expiry and signature aside) hashes the same. */
function taskSha256(command: TaskCommandTaken): string {
  const { expiresAt: _expiresAt, ...task } = command;
  return createHash("sha256").update(canonicalJson(task)).digest("hex");
}

/**
 * The handler of tasks (`machine.{id}.task`, `machine.all.fleet-task`), after the command desk has
 * checked the message (expiry by Nats-TTL, a copied answer, the signature) and its schema: the
 * selector, the expiry a task must carry, this machine's policy, confinement and working dir, then
 * the task id (once per machine), then the run. Every end is one TaskResult, stored by the desk
 * with the task's settlement.
 */
export function taskHandler(options: TaskHandlerOptions): CommandHandler<TaskCommandTaken> {
  const { clock, logger, settings } = options;
  const nowIso = (): string => new Date(clock.now()).toISOString();
  // Each task refused is answered, a fleet task too (not only the first of the hour that shares its reason).
  const refuse = (command: TaskCommandTaken, reason: string, delivery: CommandDelivery): CommandOutcome =>
    reject(
      `task ${command.taskId} refused: ${reason}`,
      taskResultEvent(endWithoutRun(command.taskId, "REJECTED", reason, nowIso()), delivery),
      { answerKey: `task ${command.taskId}` },
    );

  /** Runs a recorded task to its end; its result is stored by the desk, and its folder removed after. */
  const run = async (command: TaskCommandTaken, delivery: CommandDelivery, cwd: string): Promise<TaskResult> => {
    const { taskId } = command;
    const marker = newMarker(taskId);
    const folder = taskFolder(options.dataDir, taskId);
    const taskRun = new TaskRun({
      taskId,
      prepare: async () => {
        await mkdir(folder, { recursive: true, mode: 0o700 });
        const env = taskEnvironment(options.environment, command, marker);
        const spec = await launchSpec(command, { cwd, folder }, env);
        if (settings.confine !== "working-dir") return spec;
        const hidden = options.hiddenWhenConfined.filter((folder) => existsSync(folder));
        return confinedSpec(spec, command.env, { hidden, readable: folder === cwd ? [] : [folder] });
      },
      marker,
      timeoutMs: command.timeoutSeconds * 1000,
      maxOutputBytes: command.maxOutputBytes ?? TASK_LIMITS.defaultMaxOutputBytes,
      clock,
      logger,
      sendChunk: (chunk) =>
        options.sink.emit({
          type: EventType.taskOutput,
          body: chunk,
          correlationId: delivery.causationId,
          causationId: delivery.causationId,
        }),
      noteMarker: (value) => options.ledger.setMarker(taskId, value),
    });
    // Registered before anything is awaited: a cancel from now on reaches it.
    options.running.add(taskId, taskRun);
    const onStop = (): void => taskRun.stopForShutdown();
    delivery.signal.addEventListener("abort", onStop, { once: true });
    try {
      logger.info(
        { taskId, causationId: delivery.causationId, requestedBy: command.requestedBy, cwd },
        "task starting",
      );
      const result = await taskRun.run();
      logger.info(
        {
          taskId,
          status: result.status,
          exitCode: result.exitCode,
          signal: result.signal,
          durationMs: result.durationMs,
        },
        "task ended",
      );
      return result;
    } finally {
      delivery.signal.removeEventListener("abort", onStop);
      options.running.remove(taskId);
    }
  };

  return {
    what: "task",
    schema: TaskCommandTaken,
    rejection(reason, raw, context) {
      const interrupted = context.kind === "interrupted";
      return taskResultEvent(endWithoutRun(taskIdOf(raw), interrupted ? "FAILED" : "REJECTED", reason, nowIso()), {
        causationId: context.causationId,
      });
    },
    async handle(command, delivery) {
      const { taskId } = command;
      const fleetWide = delivery.subject === fleetSubjects.task;
      const verdict = selectorVerdict(command, fleetWide, options.tags());
      if (verdict.kind === "not-selected") {
        logger.debug({ taskId, selector: command.selector }, "fleet task not for this machine (its selector): settled");
        return done();
      }
      if (verdict.kind === "refuse") return refuse(command, verdict.reason, delivery);
      const refusal =
        expiryRefusal(command.expiresAt, delivery.expiresAtMs, clock.now()) ??
        policyRefusal(command, settings, options.platform) ??
        (settings.confine === "working-dir" ? await options.confinementProblem() : null);
      if (refusal) return refuse(command, refusal, delivery);
      const where = await chooseWorkingDir(command.workingDir, {
        dataDir: options.dataDir,
        allowedWorkingDirs: settings.allowedWorkingDirs,
        taskId,
      });
      if ("refusal" in where) return refuse(command, where.refusal, delivery);
      // Not yet recorded: a stop now leaves it to be taken at the next start.
      delivery.signal.throwIfAborted();

      const resultEventId = randomUUID();
      const recording = options.ledger.record({
        taskId,
        bodySha256: taskSha256(command),
        resultEventId,
        commandRef: `${delivery.stream}:${delivery.streamSequence}`,
      });
      if (recording.kind === "known") {
        const { record } = recording;
        if (record.bodySha256 === taskSha256(command)) {
          logger.info(
            { taskId, resultEventId: record.resultEventId, takenFrom: record.commandRef },
            "the same task again: it is not run twice (its one result is the event named)",
          );
          return done();
        }
        return refuse(
          command,
          `taskId ${taskId} was used for another task (taken from ${record.commandRef}); a task id runs once per machine: send a new one`,
          delivery,
        );
      }
      const ids = { causationId: delivery.causationId, eventId: resultEventId };
      if (recording.cancel) {
        const why = recording.cancel.reason ?? "no reason given";
        logger.info({ taskId, cancel: recording.cancel.causationId }, "task cancelled before it started");
        return done(
          taskResultEvent(endWithoutRun(taskId, "CANCELLED", `cancelled before it started: ${why}`, nowIso()), ids),
        );
      }

      let result: TaskResult;
      try {
        result = await run(command, delivery, where.path);
      } catch (error) {
        // Recorded, so never taken again: whatever went wrong ends it, reported.
        logger.error({ err: error, taskId }, "task failed unexpectedly");
        result = endWithoutRun(taskId, "FAILED", `the agent failed running it: ${(error as Error).message}`, nowIso());
      }
      // The folder goes once the result is stored: a crash before leaves it to the next start to remove.
      return doneThen(taskResultEvent(result, ids), () =>
        rm(taskFolder(options.dataDir, taskId), { recursive: true, force: true }),
      );
    },
  };
}
