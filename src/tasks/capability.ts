import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { CapabilityFactory } from "../capability/index.ts";
import { taskFeeds } from "../contracts/index.ts";
import type { TaskLedger } from "../outbox/index.ts";
import { type Clock, type Logger, PROCESS_UID } from "../runtime/index.ts";
import { cancelHandler } from "./cancel-handler.ts";
import { taskProcesses } from "./marker-scan.ts";
import { stopProcessTree } from "./process-tree.ts";
import { RunningTasks } from "./running-tasks.ts";
import { SandboxCheck } from "./sandbox.ts";
import { taskHandler } from "./task-handler.ts";
import { TASK_GRACE_MS } from "./task-run.ts";
import { taskTrust } from "./task-trust.ts";
import { TASKS_FOLDER } from "./working-dir.ts";

export interface TasksCapabilityOptions {
  /** The task ids taken and the cancels kept, in the outbox's database. */
  readonly ledger: TaskLedger;
  /** The environment tasks start from (the agent's; its own variables are taken out). Default: none but PATH's usual folders. */
  readonly environment?: Readonly<Record<string, string | undefined>> | undefined;
}

/** Without an environment from its host, a task still finds the usual programs. */
const FALLBACK_ENVIRONMENT = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" };

/**
 * Remote tasks (DESIGN, "Remote tasks"): a program or script the platform asks this machine (or
 * every machine whose tags match) to run, its output sent while it runs, its end reported once.
 * Two routes of the command desk: tasks (`tasks.maxConcurrent` side by side, the rest waiting in
 * the inbox, in order) and their cancels (never behind a task).
 */
export function tasksCapability(options: TasksCapabilityOptions): CapabilityFactory {
  return (context) => {
    const { settings, clock, logger } = context;
    const taskSettings = settings.tasks;
    const feeds = taskFeeds(context.machineId);
    const trust = taskTrust(context.trust, taskSettings.allowUnsigned);
    const running = new RunningTasks();
    let tags: Readonly<Record<string, string>> = settings.tags;
    const environment = options.environment ?? FALLBACK_ENVIRONMENT;
    const sandbox = new SandboxCheck(environment);
    const handler = taskHandler({
      dataDir: settings.dataDir,
      hiddenWhenConfined: [settings.configDir, settings.dataDir],
      settings: taskSettings,
      platform: context.platform,
      clock,
      logger,
      sink: context.sink,
      ledger: options.ledger,
      running,
      tags: () => tags,
      environment,
      confinementProblem: () => sandbox.problem(),
    });
    const cancels = context.commands.route({
      feeds: [feeds.taskCancel, feeds.fleetTaskCancel],
      trust,
      handler: cancelHandler({ clock, logger, ledger: options.ledger, running }),
    });
    const tasks = context.commands.route({
      feeds: [feeds.task, feeds.fleetTask],
      trust,
      parallel: taskSettings.maxConcurrent,
      // A task cut short by a crash is reported FAILED and never run again: it may not be safe to repeat.
      interrupted: "report",
      handler,
    });
    return {
      name: "tasks",
      start: async () => {
        announce(logger, trust.mode, taskSettings.enabled);
        // Before any task can start: no task of this run has a folder yet.
        await removeTaskFolders(settings.dataDir).catch((error: unknown) => context.recordError("tasks", error));
        // In the background: stopping what a crash left running may take a grace period.
        void stopLeftovers(options.ledger, clock, logger).catch((error: unknown) =>
          context.recordError("tasks", error),
        );
      },
      // Cancels first: a task stopping is not waiting for one.
      stop: async () => {
        await cancels.stop();
        await tasks.stop();
      },
      status: () => ({
        accepts: trust.mode,
        enabled: taskSettings.enabled,
        confine: taskSettings.confine,
        maxConcurrent: taskSettings.maxConcurrent,
        running: running.list(),
        queued: tasks.waiting(),
      }),
      appliers: [
        {
          name: "task-selector-tags",
          apply: (next) => {
            tags = next.tags ?? settings.tags;
          },
        },
      ],
    };
  };
}

function announce(logger: Logger, mode: string, enabled: boolean): void {
  if (!enabled) logger.info("remote tasks are turned off (tasks.enabled false): every task is refused");
  else if (mode === "unsigned")
    logger.warn(
      "DEVELOPMENT MODE for tasks: tasks.allowUnsigned is set and there is no configSigningKey, so this agent RUNS UNSIGNED TASKS: any identity that can make the server store a message on its task subjects can run programs here",
    );
  else if (mode === "refused")
    logger.info(
      "no configSigningKey: remote tasks are refused (tasks.allowUnsigned would take unsigned ones, for development)",
    );
}

/** The tasks' folders a run left (results stored, or to be reported FAILED by the desk): removed. */
async function removeTaskFolders(dataDir: string): Promise<void> {
  const folders = await readdir(join(dataDir, TASKS_FOLDER)).catch(() => [] as string[]);
  for (const folder of folders) await rm(join(dataDir, TASKS_FOLDER, folder), { recursive: true, force: true });
}

/**
 * After a crash: every process a task of the last run left (found by its marker) is stopped. The
 * tasks themselves are reported FAILED by the command desk, never run again.
 */
async function stopLeftovers(ledger: TaskLedger, clock: Clock, logger: Logger): Promise<void> {
  for (const record of ledger.withMarkers()) {
    const marker = record.marker as string;
    const left = (await taskProcesses({ marker, group: null, uid: PROCESS_UID })) ?? [];
    if (left.length > 0) {
      logger.warn(
        { taskId: record.taskId, processes: left },
        "processes of a task the last run was running when it ended unexpectedly: stopping them",
      );
      await stopProcessTree({ pid: null, marker, graceMs: TASK_GRACE_MS, clock });
    }
    ledger.setMarker(record.taskId, null);
  }
}
