import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../../test/helpers/nats-server.ts";
import { createPlatformStreams } from "../../test/helpers/streams.ts";
import { holdFor } from "../../test/helpers/wait-for.ts";
import { AgentFleet } from "../support/agent-fleet.ts";
import { accountFor } from "../support/ledger.ts";
import { type FaultScenario, type ScenarioResult, seededRandom } from "../support/scenario.ts";
import { storedEvents } from "../support/stored-events.ts";

/**
 * The real daemon: a few agents sampling telemetry every second while, at random, one is killed -9
 * and started again, or nats-server is killed -9 and brought back. At the end every agent must be
 * up, have delivered everything it numbered, and stop with exit 0 on SIGTERM.
 */
export function agentCrashSoak(options: { agents: number; durationMs: number; seed: number }): FaultScenario {
  return {
    name: "agent-crash-soak",
    summary: `${options.agents} agents, kill -9 of an agent or of nats-server every 2-5 s for ${Math.round(options.durationMs / 1000)} s`,
    async run(): Promise<ScenarioResult> {
      const random = seededRandom(options.seed);
      const server = await startNatsServer();
      const observer = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const fleet = new AgentFleet(() => ({
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_TELEMETRY_SCHEDULE: "* * * * * *",
        EDGE_AGENT_HEARTBEAT_SECONDS: "1",
      }));
      const roots: string[] = [];
      try {
        await createPlatformStreams(observer);
        for (let index = 1; index <= options.agents; index++)
          roots.push(dirname((await fleet.start(`soak-${index}`)).dataDir));
        let agentKills = 0;
        let brokerKills = 0;
        const until = Date.now() + options.durationMs;
        while (Date.now() < until) {
          await holdFor(2_000 + random() * 3_000, "the soak's next fault comes 2-5 s after the last");
          if (random() < 0.25) {
            await server.kill();
            await holdFor(500 + random() * 2_000, "nats-server stays down 0.5-2.5 s");
            await server.start();
            brokerKills += 1;
          } else {
            const machineId = fleet.machineIds[Math.floor(random() * fleet.machineIds.length)] as string;
            await fleet.crashAndRestart(machineId);
            agentKills += 1;
          }
        }
        const lastHandedOut = await fleet.settled(observer, 60_000);
        const unclean = await fleet.stopAll();
        const ledger = accountFor(await storedEvents(observer), { lastHandedOut });
        const cases = agentKills + brokerKills;
        const failures = [...fleet.unexpectedExits, ...unclean];
        return {
          cases,
          survived: Math.max(0, cases - failures.length),
          lost: ledger.lost,
          duplicated: ledger.duplicated,
          reusedSequences: ledger.reusedSequences,
          events: ledger.stored,
          details: {
            agentKills,
            brokerKills,
            lastHandedOut: Object.fromEntries(lastHandedOut),
            failures,
            missingExamples: ledger.missingExamples,
          },
        };
      } finally {
        await fleet.dispose();
        await observer.close();
        await server.dispose();
        for (const root of roots) await rm(root, { recursive: true, force: true });
      }
    },
  };
}
