import { isSea } from "node:sea";
import { createAgent } from "../agent/index.ts";
import { CommandError, ExitCode, GracefulStop } from "../cli-kit/index.ts";
import {
  AGENT_VERSION,
  createLogger,
  type DataDirLock,
  DataDirLockedError,
  lockDataDir,
  systemClock,
} from "../runtime/index.ts";
import { defaultServiceLayout, removeAgent, wasUninstalled } from "../service/index.ts";
import { METRICS_OFF, type Settings } from "../settings/index.ts";
import { environmentWithoutLauncher, launcherCommand, launchInstalledVersion, ownCommand } from "./launcher.ts";
import { replaceProcess } from "./replace-process.ts";

/** How long SIGTERM may take before the process leaves anyway (systemd waits 90 s; we promise 5). */
const SHUTDOWN_DEADLINE_MS = 5_000;
/**
 * Set by our service definitions: a service manager restarts the agent when it exits, so a
 * restart is an exit. Run by hand, the agent starts itself again through its launcher instead.
 */
export const SUPERVISED_ENV = "EDGE_AGENT_SUPERVISED";

/** `args`: this process's own arguments (`run` and its flags), handed on to an installed update. */
export async function runDaemon(settings: Settings, args: readonly string[]): Promise<never> {
  const logger = createLogger({ level: settings.logLevel });
  if (await wasUninstalled(settings.dataDir)) {
    logger.warn(
      { dataDir: settings.dataDir },
      "edge-agent was uninstalled remotely: not starting (remove the package, or the marker file, to go on)",
    );
    process.exit(ExitCode.uninstalled);
  }
  // One agent per data dir, before anything in it is touched (the launcher counts trial starts
  // there). Handed over across an exec into an installed update (which takes it again), and
  // released on every way out that does not exit at once; the process ending releases it anyway.
  const takeLock = (): DataDirLock => {
    try {
      return lockDataDir(settings.dataDir, process.pid);
    } catch (error) {
      if (error instanceof DataDirLockedError)
        throw new CommandError(error.message, ExitCode.dataDirInUse, { cause: error });
      throw error;
    }
  };
  let lock = takeLock();
  // A signal while the agent is still being made is kept and acted on once it can stop cleanly,
  // instead of ending the process half-started. One listener for the whole run: removing a
  // signal's last listener closes Node's watcher, and a signal already caught for it is lost.
  let earlySignal: NodeJS.Signals | null = null;
  let onSignal = (signal: NodeJS.Signals): void => {
    earlySignal ??= signal;
  };
  const signalListener = (signal: NodeJS.Signals): void => onSignal(signal);
  process.on("SIGTERM", signalListener);
  process.on("SIGINT", signalListener);
  let handedOver = false;
  await launchInstalledVersion({
    dataDir: settings.dataDir,
    selfVersion: AGENT_VERSION,
    args,
    logger,
    exec: (file, execArgs, env) => {
      lock.release();
      handedOver = true;
      return replaceProcess(file, execArgs, env);
    },
  });
  // The update could not start: this binary runs the agent after all.
  if (handedOver) lock = takeLock();

  /** Stops the agent once, then leaves the way `then` says (or with 1 when stopping fails or hangs). */
  const graceful = new GracefulStop({
    logger,
    program: "edge-agent",
    deadlineMs: SHUTDOWN_DEADLINE_MS,
    clock: systemClock,
    stop: () => {
      void metrics?.close();
      return agent.stop(SHUTDOWN_DEADLINE_MS - 1_000);
    },
    leave: (code) => process.exit(code),
  });
  const restart = (reason: string): void => {
    if (graceful.stopping) return;
    logger.info({ reason }, "restarting edge-agent");
    graceful.stopThen(async () => {
      lock.release();
      if (process.env[SUPERVISED_ENV] === "1") process.exit(ExitCode.restart);
      const [file, ...launcherArgs] = launcherCommand();
      await replaceProcess(file ?? process.execPath, [...launcherArgs, ...args], environmentWithoutLauncher()).catch(
        (error: unknown) => {
          logger.fatal({ err: error }, "cannot start again: exiting");
          process.exit(ExitCode.restart);
        },
      );
    });
  };
  // A verified remote uninstall: the agent stops, removes itself, and leaves with the code that
  // keeps the service manager from starting it again.
  const uninstall = async (reason: string): Promise<void> => {
    if (graceful.stopping) return;
    logger.warn({ reason }, "uninstalling edge-agent");
    graceful.stopThen(async () => {
      const layout = {
        ...defaultServiceLayout(process.execPath),
        configDir: settings.configDir,
        dataDir: settings.dataDir,
      };
      const how = await removeAgent(layout, systemClock);
      logger.warn({ how }, "edge-agent uninstalled");
      lock.release();
      process.exit(ExitCode.uninstalled);
    });
  };
  // Off unless asked for: then only is the metrics code (and prom-client) loaded.
  const metrics =
    settings.metricsListen === undefined || settings.metricsListen.trim() === METRICS_OFF
      ? null
      : (await import("./metrics-endpoint.ts")).metricsEndpoint(settings.metricsListen, logger);
  const agent = await createAgent(settings, {
    clock: systemClock,
    logger,
    platform: process.platform,
    arch: process.arch,
    pid: process.pid,
    writeStatusFile: true,
    requestRestart: restart,
    childEnvironment: environmentWithoutLauncher(),
    uninstall,
    inventoryCommand: ownCommand(),
    runningFrom: isSea() ? "executable" : "sources",
    ...(metrics ? { onEventStored: metrics.observeEvent } : {}),
  });
  await metrics?.serve(() => agent.status());

  const shutdown = graceful.onSignal(() => {
    lock.release();
    process.exit(0);
  });
  onSignal = shutdown;
  process.on("uncaughtException", (error) => {
    // The service manager restarts us; the outbox keeps everything already accepted.
    logger.fatal({ err: error }, "uncaught exception: exiting so the service manager restarts the agent");
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection");
  });

  await agent.start();
  if (earlySignal !== null) shutdown(earlySignal);
  // The daemon lives until a signal ends it.
  return new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30);
  });
}
