import type { SimulatedAgent } from "./fleet.ts";

export interface FleetSummary {
  readonly count: number;
  readonly started: number;
  readonly connected: number;
  /** Events stored and not yet acknowledged by JetStream, over every agent. */
  readonly outboxPending: number;
  readonly agentsWithPending: number;
  /**
   * Agents connected now that have read every command feed since they last connected or
   * reconnected (each agent's own `commands.lastCheckedAt`), and the latest of those reads (epoch ms).
   */
  readonly feedsRead: number;
  readonly feedsReadLatestAtMs: number | null;
  /** Agents that say some command feed cannot be read now (`commands.problem`). */
  readonly agentsWithCommandProblems: number;
}

/**
 * The fleet at a glance, read from each agent's `progress()` (no database query, no capability
 * asked): cheap enough to poll a fleet of thousands every second. `count` is how many were asked for.
 */
export function summarizeFleet(count: number, agents: readonly SimulatedAgent[]): FleetSummary {
  let connected = 0;
  let outboxPending = 0;
  let agentsWithPending = 0;
  let feedsRead = 0;
  let feedsReadLatestAtMs: number | null = null;
  let agentsWithCommandProblems = 0;
  for (const entry of agents) {
    const progress = entry.agent.progress();
    outboxPending += progress.outboxPending;
    if (progress.outboxPending > 0) agentsWithPending += 1;
    if (progress.commandsProblem !== null) agentsWithCommandProblems += 1;
    if (!entry.connected) continue;
    connected += 1;
    // A read needs the link: one at or after the latest connect was made on it.
    const readAtMs = progress.commandsReadAtMs;
    if (readAtMs !== null && entry.connectedAtMs !== null && readAtMs >= entry.connectedAtMs) {
      feedsRead += 1;
      feedsReadLatestAtMs = Math.max(feedsReadLatestAtMs ?? readAtMs, readAtMs);
    }
  }
  return {
    count,
    started: agents.length,
    connected,
    outboxPending,
    agentsWithPending,
    feedsRead,
    feedsReadLatestAtMs,
    agentsWithCommandProblems,
  };
}
