import { hostname } from "node:os";
import { ExitCode, GracefulStop, processAlive } from "../../cli-kit/index.ts";
import { parseMetricsListen } from "../../metrics-kit/index.ts";
import { AGENT_VERSION, createLogger, fullGarbageCollector, systemClock } from "../../runtime/index.ts";
import { createBridge } from "../index.ts";
import { describeKafkaError, TopicSetupError } from "../kafka/index.ts";
import type { BridgeSettings } from "../settings/index.ts";
import { InstanceIdInUseError } from "../shards/index.ts";
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
    collectGarbage: fullGarbageCollector(),
  });
  // Off (`off`) means the metrics code and prom-client are never loaded. The settings refused a bad address.
  const listen = parseMetricsListen(settings.metricsListen);
  const metrics =
    listen === null || typeof listen === "string"
      ? null
      : await (await import("./metrics-endpoint.ts")).serveBridgeMetrics(listen, bridge.status, logger);

  // The bridge's own timers never hold the process (runtime/clock.ts), not even while NATS is
  // still out of reach: this one does, until the bridge has stopped.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  return new Promise<number>((resolve) => {
    const graceful = new GracefulStop({
      logger,
      program: "edge-bridge",
      deadlineMs: SHUTDOWN_DEADLINE_MS,
      clock: systemClock,
      // The endpoint answers until the shards have stopped: a scrape then still sees the last commits.
      stop: () => bridge.stop(SHUTDOWN_DEADLINE_MS - 1_500).finally(() => metrics?.close()),
      leave: resolve,
    });
    const stoppedWith = (code: number) => (): void => {
      logger.info("edge-bridge stopped");
      resolve(code);
    };
    const stopThen = (code: number): void => graceful.stopThen(stoppedWith(code));
    const onSignal = graceful.onSignal(stoppedWith(ExitCode.ok));
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
