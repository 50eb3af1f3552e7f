export { createAgentMetrics, type AgentMetrics } from "./agent-metrics.ts";
export { commandOutcomeOf, type CommandOutcome } from "./command-outcomes.ts";
export { startMetricsServer, type MetricsServer } from "./metrics-server.ts";
