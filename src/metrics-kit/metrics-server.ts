import { createServer, type Server } from "node:http";
import type { Logger } from "../runtime/index.ts";
import type { MetricsListen } from "./metrics-listen.ts";

/** What an endpoint serves: the exposition text, made fresh at each scrape. */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface MetricsServer {
  /** Where it listens (the port the system gave, when asked for 0). */
  readonly address: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` in Prometheus' text format on a loopback address (the settings refuse
 * any other); anything else gets 404. The agent and the bridge each hand it their own metrics.
 */
export async function startMetricsServer(
  listen: MetricsListen,
  source: MetricsSource,
  logger: Logger,
): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    source.render().then(
      (text) => response.writeHead(200, { "content-type": source.contentType }).end(text),
      (error: unknown) => {
        logger.error({ err: error }, "cannot render the metrics");
        response.writeHead(500, { "content-type": "text/plain" }).end("cannot render the metrics (see the log)\n");
      },
    );
  });
  // A scraper that keeps its connection open must not hold the process's shutdown.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : listen.port;
  logger.info(
    { metrics: `http://${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${port}/metrics` },
    "serving Prometheus metrics",
  );
  return {
    address: { host: listen.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
