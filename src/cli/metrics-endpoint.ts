import type { AgentStatus } from "../agent/index.ts";
import type { OutgoingEvent } from "../events/index.ts";
import { createAgentMetrics } from "../metrics/index.ts";
import { type MetricsServer, startMetricsServer } from "../metrics-kit/index.ts";
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
  // The settings refused this already (and `off` never gets here); a second look keeps the type honest.
  if (typeof listen === "string") throw new SettingsError("metricsListen", listen);
  if (listen === null) throw new SettingsError("metricsListen", "is off: no endpoint to serve");
  const metrics = createAgentMetrics({ clock: systemClock });
  let server: MetricsServer | null = null;
  return {
    observeEvent: (event) => metrics.observeEvent(event),
    async serve(status) {
      try {
        const source = { contentType: metrics.contentType, render: () => metrics.render(status()) };
        server = await startMetricsServer(listen, source, logger);
      } catch (error) {
        logger.error({ err: error, metricsListen }, "cannot serve metrics: the agent runs without them");
      }
    },
    close: async () => server?.close(),
  };
}
