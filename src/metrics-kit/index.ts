export { METRICS_LISTEN_EXAMPLE, METRICS_OFF, type MetricsListen, parseMetricsListen } from "./metrics-listen.ts";
export { type MetricsServer, type MetricsSource, startMetricsServer } from "./metrics-server.ts";
