import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../../test/helpers/nats-server.ts";
import { createPlatformStreams } from "../../test/helpers/streams.ts";
import { holdFor, withDeadline } from "../../test/helpers/wait-for.ts";
import { accountFor } from "../support/ledger.ts";
import { type FaultScenario, type ScenarioResult, seededRandom } from "../support/scenario.ts";
import { storedEvents } from "../support/stored-events.ts";

const OUTBOX_PROCESS = resolve(import.meta.dirname, "../../test/fixtures/outbox/outbox-process.ts");

/**
 * Volume: 20,000 events in a device outbox, drained by a process killed -9 at random points, with
 * the broker itself killed -9 and restarted every few rounds. Every event must be stored once.
 */
export function outboxCrashSoak(options: {
  events: number;
  maxRounds: number;
  deadlineMs: number;
  seed: number;
}): FaultScenario {
  return {
    name: "outbox-crash-soak",
    summary: `${options.events} events drained through kill -9 of the draining process and of nats-server`,
    async run(): Promise<ScenarioResult> {
      const random = seededRandom(options.seed);
      const dataDir = await mkdtemp(join(tmpdir(), "edge-faults-outbox-"));
      const server = await startNatsServer();
      const observer = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      try {
        await createPlatformStreams(observer);
        const runOutbox = (args: string[]) => {
          const child = spawn(process.execPath, [OUTBOX_PROCESS, ...args], { stdio: "ignore" });
          return {
            kill: () => child.kill("SIGKILL"),
            exited: new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code))),
          };
        };
        if ((await runOutbox(["fill", dataDir, String(options.events)]).exited) !== 0)
          throw new Error("could not fill the outbox");

        const until = Date.now() + options.deadlineMs;
        let processKills = 0;
        let brokerKills = 0;
        let drained = false;
        for (let round = 1; round <= options.maxRounds && Date.now() < until && !drained; round++) {
          const drain = runOutbox(["drain", dataDir, server.url]);
          const outcome = await Promise.race([
            drain.exited.then((code) => ({ code })),
            holdFor(150 + random() * 600, "a drain is killed -9 at a random point of its work").then(() => null),
          ]);
          if (outcome?.code === 0) {
            drained = true;
            break;
          }
          drain.kill();
          await drain.exited;
          processKills += 1;
          if (round % 5 === 0) {
            await server.kill();
            await server.start();
            brokerKills += 1;
          }
        }
        // The last run is left alone to finish.
        if (!drained) {
          const last = runOutbox(["drain", dataDir, server.url]);
          const code = await withDeadline("the last drain", last.exited, Math.max(30_000, until - Date.now())).catch(
            () => "timeout" as const,
          );
          if (code === "timeout") last.kill();
          drained = code === 0;
        }
        const ledger = accountFor(await storedEvents(observer), { lastHandedOut: new Map([["m1", options.events]]) });
        const cases = processKills + brokerKills;
        return {
          cases,
          survived: drained ? cases : 0,
          lost: ledger.lost,
          duplicated: ledger.duplicated,
          reusedSequences: ledger.reusedSequences,
          events: ledger.stored,
          details: { processKills, brokerKills, drained, missingExamples: ledger.missingExamples },
        };
      } finally {
        await observer.close();
        await server.dispose();
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
