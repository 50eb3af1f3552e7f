import { hostname } from "node:os";
import { ExitCode } from "../../cli/exit-codes.ts";
import { processAlive } from "../../cli/process-alive.ts";
import { systemClock } from "../../runtime/clock.ts";
import { createLogger } from "../../runtime/logger.ts";
import { AGENT_VERSION } from "../../runtime/version.ts";
import { createBridge } from "../bridge.ts";
import { describeKafkaError } from "../kafka/kafka-errors.ts";
import { TopicSetupError } from "../kafka/topics.ts";
import type { BridgeSettings } from "../settings/bridge-settings.ts";
import { InstanceIdInUseError } from "../shards/shard-leases.ts";
import { guardProcess } from "./process-guards.ts";

/** SIGTERM to exit: the open transactions commit or abort, leases go back, within this. */
const SHUTDOWN_DEADLINE_MS = 10_000;

/** Runs the bridge until SIGTERM/SIGINT (exit 0) or until Kafka refuses it for good (exit 1). */
export async function runBridge(settings: BridgeSettings): Promise<number> {
  const logger = createLogger({ level: settings.logLevel, fields: { instanceId: settings.instanceId } });
  const bridge = createBridge(settings, {
    clock: systemClock,
    logger,
    version: AGENT_VERSION,
    pid: process.pid,
    host: hostname(),
    processAlive,
    memory: () => {
      const usage = process.memoryUsage();
      return {
        rssBytes: usage.rss,
        heapUsedBytes: usage.heapUsed,
        heapTotalBytes: usage.heapTotal,
        externalBytes: usage.external,
        arrayBuffersBytes: usage.arrayBuffers,
      };
    },
    writeStatusFile: true,
  });

  // The bridge's own timers never hold the process (runtime/clock.ts), not even while NATS is
  // still out of reach: this one does, until the bridge has stopped.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  return new Promise<number>((resolve) => {
    let stoppingSinceMs: number | null = null;
    const stopThen = (code: number): void => {
      if (stoppingSinceMs !== null) return;
      stoppingSinceMs = performance.now();
      const forced = setTimeout(() => {
        logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, "shutdown took too long: leaving now");
        resolve(ExitCode.failure);
      }, SHUTDOWN_DEADLINE_MS);
      forced.unref();
      bridge
        .stop(SHUTDOWN_DEADLINE_MS - 1_500)
        .then(() => {
          logger.info("edge-bridge stopped");
          resolve(code);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, "error while stopping");
          resolve(ExitCode.failure);
        });
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stoppingSinceMs !== null) {
        // One kill often arrives twice (to the process and to its group, as `timeout` sends it):
        // only a signal that comes later is an operator insisting.
        if (performance.now() - stoppingSinceMs < 1_000) return;
        logger.warn({ signal }, "second signal while stopping: leaving now");
        resolve(ExitCode.failure);
        return;
      }
      logger.info({ signal }, "stopping edge-bridge");
      stopThen(ExitCode.ok);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    guardProcess(process, logger, {
      stop: () => stopThen(ExitCode.failure),
      leaveNow: () => resolve(ExitCode.failure),
    });
    void bridge.fatal.then((error) => {
      process.stderr.write(`edge-bridge: Kafka refuses the bridge: ${describeKafkaError(error)}\n`);
      stopThen(ExitCode.failure);
    });
    bridge.start().catch((error: unknown) => {
      process.stderr.write(`edge-bridge: cannot start: ${describeKafkaError(error)}\n`);
      logger.fatal({ err: error }, "cannot start");
      // A setting only the operator can fix (a topic that must be compacted, an instance id in use): 2.
      stopThen(
        error instanceof InstanceIdInUseError || error instanceof TopicSetupError
          ? ExitCode.badSettings
          : ExitCode.failure,
      );
    });
  }).finally(() => clearInterval(keepAlive));
}
