import { type MetricsListen, type MetricsServer, startMetricsServer } from "../../metrics-kit/index.ts";
import type { Logger } from "../../runtime/index.ts";
import { createBridgeMetrics } from "../metrics/index.ts";
import type { BridgeStatus } from "../service/index.ts";

/**
 * Serves the bridge's metrics at `listen` (`metricsListen`). Its module, and prom-client with it,
 * is loaded only when metrics are on. A port that cannot be had is logged, and the bridge runs on
 * without metrics: they are never a reason to stop carrying events. Null when not serving.
 */
export async function serveBridgeMetrics(
  listen: MetricsListen,
  status: () => Promise<BridgeStatus>,
  logger: Logger,
): Promise<MetricsServer | null> {
  const metrics = createBridgeMetrics();
  const source = { contentType: metrics.contentType, render: async () => metrics.render(await status()) };
  try {
    return await startMetricsServer(listen, source, logger);
  } catch (error) {
    logger.error(
      { err: error, metricsListen: `${listen.host}:${listen.port}` },
      "cannot serve metrics: the bridge runs without them",
    );
    return null;
  }
}
