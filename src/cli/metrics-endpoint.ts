import type { AgentStatus } from "../agent/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import { createAgentMetrics, type MetricsServer, startMetricsServer } from "../metrics/index.ts";
import type { Logger } from "../runtime/index.ts";
import { systemClock } from "../runtime/index.ts";
import { parseMetricsListen, SettingsError } from "../settings/index.ts";

export interface MetricsEndpoint {
  /** Hand to the agent (`onEventStored`) before it starts, so no outcome is missed. */
  observeEvent(event: OutgoingEvent): void;
  /** Starts serving; a port that cannot be had is logged, and the agent runs on without metrics. */
  serve(status: () => AgentStatus): Promise<void>;
  close(): Promise<void>;
}

/**
 * The daemon's metrics endpoint (`metricsListen`). Its module, and prom-client with it, is loaded
 * only when metrics are on: an agent without them never pays for them.
 */
export function metricsEndpoint(metricsListen: string, logger: Logger): MetricsEndpoint {
  const listen = parseMetricsListen(metricsListen);
  // The settings refused this already; a second look costs nothing and keeps the type honest.
  if (typeof listen === "string") throw new SettingsError("metricsListen", listen);
  const metrics = createAgentMetrics({ clock: systemClock });
  let server: MetricsServer | null = null;
  return {
    observeEvent: (event) => metrics.observeEvent(event),
    async serve(status) {
      try {
        server = await startMetricsServer(listen, metrics, status, logger);
      } catch (error) {
        logger.error({ err: error, metricsListen }, "cannot serve metrics: the agent runs without them");
      }
    },
    close: async () => server?.close(),
  };
}
