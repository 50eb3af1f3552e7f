import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, open, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { PLATFORM_STREAMS } from "../../src/contracts/index.ts";
import { startNatsServer } from "../../test/helpers/nats-server.ts";
import { holdFor, waitFor } from "../../test/helpers/wait-for.ts";
import { AgentFleet } from "../support/agent-fleet.ts";
import { accountFor } from "../support/ledger.ts";
import type { FaultScenario, ScenarioResult } from "../support/scenario.ts";
import { storedEvents } from "../support/stored-events.ts";

const MACHINE = "diskfull-1";
/** Short, so a copy published again after its ack would be stored twice and show up. */
const DUPLICATE_WINDOW_MS = 2_000;

/** Writes until the file system refuses: the disk is then really full. */
async function fillUp(path: string): Promise<number> {
  const handle = await open(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  try {
    for (let index = 0; index < 100_000; index++) {
      try {
        written += (await handle.write(chunk)).bytesWritten;
      } catch {
        break;
      }
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return written;
}

async function deliveredThrough(
  observer: NatsConnection,
  machineId: string,
  sequence: number,
  deadlineMs: number,
): Promise<boolean> {
  return waitFor(
    `${machineId}'s events through ${sequence}`,
    async () =>
      (await storedEvents(observer)).some((event) => event.machineId === machineId && event.sequence >= sequence),
    deadlineMs,
    500,
  ).then(
    () => true,
    () => false,
  );
}

/**
 * The agent's data dir on a small real tmpfs, filled to the last byte while the agent runs: the
 * broker goes away and comes back, the agent is killed -9 and started again, all with the disk
 * full; then space is freed. Nothing accepted may be lost, stored twice or renumbered.
 */
export function diskFull(options: { tmpfsMb: number; phaseMs: number }): FaultScenario {
  return {
    name: "disk-full",
    summary: `data dir on a ${options.tmpfsMb} MB tmpfs filled up; broker restarted and agent killed -9 while full`,
    unavailable: () =>
      process.platform !== "linux"
        ? "needs Linux (tmpfs)"
        : process.getuid?.() !== 0
          ? "needs root to mount a tmpfs"
          : null,
    async run(): Promise<ScenarioResult> {
      const root = await mkdtemp(join(tmpdir(), "edge-faults-disk-"));
      const mountPoint = join(root, "data");
      const configDir = join(root, "config");
      await mkdir(mountPoint);
      await mkdir(configDir);
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${options.tmpfsMb}m`, "tmpfs", mountPoint]);
      const server = await startNatsServer();
      const observer = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const fleet = new AgentFleet(() => ({
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_TELEMETRY_SCHEDULE: "* * * * * *",
        EDGE_AGENT_HEARTBEAT_SECONDS: "1",
      }));
      const dirs = { dataDir: join(mountPoint, "agent"), configDir };
      const filler = join(mountPoint, "filler");
      const checks: Record<string, boolean> = {};
      try {
        const manager = await jetstreamManager(observer);
        for (const stream of PLATFORM_STREAMS) {
          await manager.streams.add({
            name: stream.name,
            subjects: [...stream.subjects],
            storage: "file",
            duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000,
          });
        }
        await fleet.start(MACHINE, dirs);
        await holdFor(options.phaseMs, "the agent samples every second with the broker up");
        // Broker away first, so events wait in the database when the disk fills: delivering them
        // later means settling them on a disk that cannot take the change.
        await server.kill();
        await holdFor(options.phaseMs, "events pile up in the database while the broker is away");
        const filledBytes = await fillUp(filler);
        await holdFor(options.phaseMs, "the agent runs with the disk full and no broker");
        checks["keeps running with the disk full and no broker"] = fleet.agent(MACHINE).child.exitCode === null;

        await server.start();
        // Long enough for several duplicate windows: an acked batch published again would be stored again.
        await holdFor(
          Math.max(options.phaseMs, 3 * DUPLICATE_WINDOW_MS),
          "past several duplicate windows with the disk full: an acked batch sent again would be stored again",
        );
        checks["answers after the broker is back, disk still full"] =
          (await fleet.outboxOf(observer, MACHINE)) !== null;
        // Events the full disk would not take are held in memory, and must reach the platform anyway.
        const heldBefore = (await fleet.outboxOf(observer, MACHINE))?.lastSequence ?? 0;
        checks["delivers what it holds in memory, disk still full"] = await deliveredThrough(
          observer,
          MACHINE,
          heldBefore,
          30_000,
        );

        const beforeCrash = await fleet.outboxOf(observer, MACHINE);
        await fleet.crashAndRestart(MACHINE);
        const afterCrash = await waitFor(
          "the agent to answer again after kill -9",
          () => fleet.outboxOf(observer, MACHINE).then((outbox) => outbox ?? undefined),
          Math.max(options.phaseMs, 30_000),
          200,
        ).catch(() => null);
        checks["starts again after kill -9 with the disk full"] = afterCrash !== null;
        // Events held only in memory die with the process (the disk would not take them): the new
        // run declares the numbers it jumps over, so they are told apart from a loss in transit.
        const skip = afterCrash?.sequenceSkip ?? null;
        const skipped = new Set<number>();
        if (skip) for (let sequence = skip.after + 1; sequence <= skip.through; sequence++) skipped.add(sequence);

        await unlink(filler);
        const lastHandedOut = await fleet.settled(observer, 60_000);
        checks["delivers everything once space is back"] = true;
        const unclean = await fleet.stopAll();
        checks["stops with exit 0"] = unclean.length === 0;
        const stored = await storedEvents(observer);
        const ledger = accountFor(stored, { lastHandedOut, skipped: new Map([[MACHINE, skipped]]) });
        const storedNumbers = new Set(stored.map((event) => event.sequence));
        const declaredGap = [...skipped].filter((sequence) => !storedNumbers.has(sequence)).length;
        const cases = Object.keys(checks).length;
        return {
          cases,
          survived: Object.values(checks).filter(Boolean).length,
          lost: ledger.lost,
          duplicated: ledger.duplicated,
          reusedSequences: ledger.reusedSequences,
          events: ledger.stored,
          details: {
            filledBytes,
            checks,
            heldInMemoryAtKill: beforeCrash?.heldInMemory ?? null,
            declaredSkip: skip,
            missingInDeclaredSkip: declaredGap,
            lastHandedOut: Object.fromEntries(lastHandedOut),
            missingExamples: ledger.missingExamples,
            failures: fleet.unexpectedExits,
          },
        };
      } finally {
        await fleet.dispose();
        await observer.close();
        await server.dispose();
        try {
          execFileSync("umount", ["-l", mountPoint]);
        } catch {
          // Already gone: nothing to undo.
        }
        await rm(root, { recursive: true, force: true });
      }
    },
  };
}
