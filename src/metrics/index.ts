export { type AgentMetrics, createAgentMetrics } from "./agent-metrics.ts";
export { type CommandOutcome, commandOutcomeOf } from "./command-outcomes.ts";
export { type MetricsServer, startMetricsServer } from "./metrics-server.ts";
