import type { NatsConnection } from "@nats-io/transport-node";
import type { OutboxStats } from "../../src/outbox/types.ts";
import { type AgentProcess, startAgentProcess } from "../../test/helpers/agent-process.ts";
import { waitFor } from "../../test/helpers/wait-for.ts";

/** Real `edge-agent run` processes, each on its own data dir, that a scenario kills and restarts. */
export class AgentFleet {
  private readonly agents = new Map<string, AgentProcess>();
  /** Processes that exited without being killed by the scenario: each one is a failed case. */
  readonly unexpectedExits: string[] = [];

  private readonly env: (machineId: string) => Record<string, string>;

  constructor(env: (machineId: string) => Record<string, string>) {
    this.env = env;
  }

  get machineIds(): string[] {
    return [...this.agents.keys()];
  }

  async start(machineId: string, dirs?: { dataDir: string; configDir: string }): Promise<AgentProcess> {
    const agent = await startAgentProcess(
      { EDGE_AGENT_MACHINE_ID: machineId, EDGE_AGENT_LOG_LEVEL: "warn", ...this.env(machineId) },
      dirs,
    );
    this.agents.set(machineId, agent);
    void agent.exited.then((exit) => {
      if (this.agents.get(machineId) === agent) {
        this.unexpectedExits.push(
          `${machineId} exited by itself (${JSON.stringify(exit)}): ${agent.output().slice(-600)}`,
        );
      }
    });
    return agent;
  }

  /** kill -9, then the same machine starts again on the same directories. */
  async crashAndRestart(machineId: string): Promise<void> {
    const agent = this.agent(machineId);
    const { dataDir, configDir } = agent;
    this.agents.delete(machineId);
    await agent.stop("SIGKILL");
    await this.start(machineId, { dataDir, configDir });
  }

  agent(machineId: string): AgentProcess {
    const agent = this.agents.get(machineId);
    if (!agent) throw new Error(`no agent ${machineId}`);
    return agent;
  }

  /** The live outbox figures of one agent, over its rpc endpoint (null while it cannot answer). */
  async outboxOf(observer: NatsConnection, machineId: string): Promise<OutboxStats | null> {
    try {
      const reply = await observer.request(`machine.${machineId}.rpc.status`, "", { timeout: 2_000 });
      return reply.json<{ outbox: OutboxStats }>().outbox;
    } catch {
      return null;
    }
  }

  /** Waits until every agent has delivered all it holds; answers each one's last handed-out sequence. */
  async settled(observer: NatsConnection, deadlineMs: number): Promise<Map<string, number>> {
    const until = Date.now() + deadlineMs;
    const last = new Map<string, number>();
    for (const machineId of this.machineIds) {
      let seen: OutboxStats | null = null;
      const delivered = await waitFor(
        `${machineId} to deliver everything`,
        async () => {
          seen = await this.outboxOf(observer, machineId);
          return seen !== null && seen.pendingCount === 0 && seen.heldInMemory === 0 ? seen : undefined;
        },
        Math.max(0, until - Date.now()),
        200,
      ).catch((error: unknown) => {
        throw new Error(`${machineId} did not deliver everything in time: ${JSON.stringify(seen)}`, { cause: error });
      });
      last.set(machineId, delivered.lastSequence);
    }
    return last;
  }

  /** SIGTERM to each: answers the machines that did not leave with exit 0. */
  async stopAll(): Promise<string[]> {
    const unclean: string[] = [];
    for (const [machineId, agent] of [...this.agents]) {
      // Out of the fleet first: an exit from here on is the one asked for.
      this.agents.delete(machineId);
      const exit = await agent.stop("SIGTERM");
      await agent.dispose();
      if (exit.code !== 0) unclean.push(`${machineId}: ${JSON.stringify(exit)}`);
    }
    return unclean;
  }

  async dispose(): Promise<void> {
    for (const agent of this.agents.values()) await agent.dispose();
    this.agents.clear();
  }
}
