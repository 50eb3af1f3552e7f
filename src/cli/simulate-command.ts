import { CommandError, ExitCode } from "../cli-kit/index.ts";
import { createLogger, type DataDirLock, DataDirLockedError, lockDataDir } from "../runtime/index.ts";
import type { Settings } from "../settings/index.ts";
import { createFleet } from "../simulator/index.ts";

/** How often the fleet's connected count and outbox backlog are logged. */
const SUMMARY_INTERVAL_MS = 60_000;
const STOP_TIMEOUT_MS = 4_000;
/** A second signal this long after the first is an operator insisting: leave at once. */
const INSIST_AFTER_MS = 1_000;

export interface SimulateOptions {
  readonly agents: string | undefined;
  /** Given explicitly: the simulator never writes into the default (a real agent's) data dir. */
  readonly dataDir: string | undefined;
  readonly startConcurrency?: string | undefined;
  readonly staggerMs?: string | undefined;
}

function wholeNumber(flag: string, value: string | undefined, fallback: number | null, minimum: number): number {
  if (value === undefined) {
    if (fallback === null)
      throw new CommandError(`simulate needs --${flag} (see edge-agent simulate --help)`, ExitCode.badSettings);
    return fallback;
  }
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < minimum) {
    throw new CommandError(
      `--${flag} must be a whole number of at least ${minimum} (got ${JSON.stringify(value)})`,
      ExitCode.badSettings,
    );
  }
  return parsed;
}

/** Runs the fleet until SIGTERM or SIGINT; resolves once every agent has stopped. */
export async function simulateCommand(settings: Settings, options: SimulateOptions): Promise<void> {
  const count = wholeNumber("agents", options.agents, null, 1);
  const startConcurrency = wholeNumber("start-concurrency", options.startConcurrency, 50, 1);
  const staggerMs = wholeNumber("stagger-ms", options.staggerMs, 0, 0);
  if (options.dataDir === undefined)
    throw new CommandError(`simulate needs --data-dir (see edge-agent simulate --help)`, ExitCode.badSettings);
  const dataDir = options.dataDir;
  const logger = createLogger({ level: settings.logLevel, fields: { component: "simulator" } });
  let lock: DataDirLock;
  try {
    lock = lockDataDir(dataDir, process.pid);
  } catch (error) {
    if (error instanceof DataDirLockedError)
      throw new CommandError(error.message, ExitCode.dataDirInUse, { cause: error });
    throw error;
  }
  const fleet = createFleet({
    count,
    server: settings.natsServers,
    dataDir,
    settings,
    logger,
    startConcurrency,
    staggerMs,
  });

  let stoppingSinceMs: number | null = null;
  const stopped = new Promise<void>((resolve, reject) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stoppingSinceMs !== null) {
        if (performance.now() - stoppingSinceMs < INSIST_AFTER_MS) return;
        logger.warn({ signal }, "second signal while stopping the fleet: leaving now");
        process.exit(ExitCode.failure);
      }
      stoppingSinceMs = performance.now();
      logger.info({ signal, agents: fleet.agents.length }, "stopping the simulated fleet");
      fleet.stop(STOP_TIMEOUT_MS).then(resolve, reject);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });

  const startedMs = performance.now();
  logger.info(
    { agents: count, servers: settings.natsServers, dataDir, startConcurrency, staggerMs },
    "starting the simulated fleet",
  );
  // Also what keeps the process alive until the fleet stops: the agents' timers never do (runtime/clock.ts).
  const summary = setInterval(() => logger.info(fleet.summary(), "simulated fleet"), SUMMARY_INTERVAL_MS);
  try {
    await fleet.start();
    const startMs = Math.round(performance.now() - startedMs);
    if (stoppingSinceMs === null) logger.info({ ...fleet.summary(), startMs }, "simulated fleet started");
    await stopped;
    logger.info("simulated fleet stopped");
  } finally {
    clearInterval(summary);
    lock.release();
  }
}
