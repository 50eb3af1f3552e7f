import { createAgent } from "../agent/create-agent.ts";
import { systemClock } from "../runtime/clock.ts";
import { createLogger } from "../runtime/logger.ts";
import type { Settings } from "../settings/index.ts";

/** How long SIGTERM may take before the process leaves anyway (systemd waits 90 s; we promise 5). */
const SHUTDOWN_DEADLINE_MS = 5_000;

export async function runDaemon(settings: Settings): Promise<never> {
  const logger = createLogger({ level: settings.logLevel });
  const agent = await createAgent(settings, { clock: systemClock, logger, writeStatusFile: true });

  let stoppingSinceMs: number | null = null;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stoppingSinceMs !== null) {
      // `conf`'s atomic writer (when-exit) re-raises the signal it intercepted, at once: only a
      // signal that comes later is an operator insisting.
      if (performance.now() - stoppingSinceMs < 1_000) return;
      logger.warn({ signal }, "second signal while stopping: leaving now");
      process.exit(1);
    }
    stoppingSinceMs = performance.now();
    logger.info({ signal }, "stopping edge-agent");
    const forced = setTimeout(() => {
      logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, "shutdown took too long: leaving now");
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    forced.unref();
    agent
      .stop(SHUTDOWN_DEADLINE_MS - 1_000)
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ err: error }, "error while stopping");
        process.exit(1);
      });
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  process.on("uncaughtException", (error) => {
    // The service manager restarts us; the outbox keeps everything already accepted.
    logger.fatal({ err: error }, "uncaught exception: exiting so the service manager restarts the agent");
    process.exit(1);
  });
  process.on("unhandledRejection", (reason) => {
    logger.error({ err: reason }, "unhandled promise rejection");
  });

  await agent.start();
  // The daemon lives until a signal ends it.
  return new Promise<never>(() => {
    setInterval(() => undefined, 1 << 30);
  });
}
