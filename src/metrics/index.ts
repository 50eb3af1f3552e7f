export { type AgentMetrics, createAgentMetrics, type MetricsStatus } from "./agent-metrics.ts";
export { type CommandOutcome, commandOutcomeOf } from "./command-outcomes.ts";
