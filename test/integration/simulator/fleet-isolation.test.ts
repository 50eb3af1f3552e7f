import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AGENT_CONFIG_BUCKET,
  CONFIG_DEFAULTS_KEY,
  configKeyForMachine,
  EventHeader,
  PLATFORM_STREAMS,
} from "../../../src/contracts/index.ts";
import { createLogger, type Logger } from "../../../src/runtime/logger.ts";
import { type Fleet, startFleet } from "../../../src/simulator/index.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream, type StoredMessage } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const AGENTS = 50;
/** The one agent given a configuration (and a log level) of its own. */
const TARGET = "sim-000007";

interface LogLine {
  readonly level: string;
  readonly machineId?: string;
  readonly msg: string;
  readonly revision?: number;
}

describe(`a simulated fleet of ${AGENTS} agents in one process`, () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let kv: KV;
  let root: string;
  let fleet: Fleet;
  let logger: Logger;
  const lines: LogLine[] = [];

  /** Every agent's revision and status as the agent itself says. */
  const configOf = (machineId: string): { revision: number; status: string | undefined } => {
    const config = fleet.status(machineId)?.capabilities.config as {
      revision: number;
      lastStatus: { status: string } | null;
    };
    return { revision: config.revision, status: config.lastStatus?.status };
  };
  const everyAgentApplied = (revision: number): boolean =>
    fleet.agents.every(
      (entry) => configOf(entry.machineId).revision === revision && configOf(entry.machineId).status === "APPLIED",
    );

  beforeAll(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    kv = await new Kvm(operator).create(AGENT_CONFIG_BUCKET, { history: 10 });
    root = await mkdtemp(join(tmpdir(), "edge-agent-fleet-"));
    // One root logger for the whole fleet, as the simulator has: each agent logs through a child.
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n"))
          if (line.startsWith("{")) lines.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    logger = createLogger({ level: "info", destination });
    fleet = await startFleet({ count: AGENTS, server: server.url, dataDir: root, logger, startConcurrency: 25 });
    await waitFor("every agent connected", () => fleet.summary().connected === AGENTS, 60_000);
    // The fleet's word that every agent read its command feeds, as the benchmark waits for it.
    await waitFor("every agent read its command feeds", () => fleet.summary().feedsRead === AGENTS, 60_000);
    expect(fleet.summary().agentsWithCommandProblems).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await fleet?.stop();
    await operator?.close();
    await server?.dispose();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("gives each agent its own identity and data dir", () => {
    const ids = fleet.agents.map((entry) => entry.machineId);
    expect(new Set(ids).size).toBe(AGENTS);
    expect(new Set(fleet.agents.map((entry) => entry.dataDir)).size).toBe(AGENTS);
    for (const entry of fleet.agents) {
      expect(entry.dataDir).toBe(join(root, entry.machineId));
      expect(fleet.status(entry.machineId)?.machineId).toBe(entry.machineId);
    }
    expect(ids.toSorted()).toEqual(
      Array.from({ length: AGENTS }, (_, index) => `sim-${String(index).padStart(6, "0")}`),
    );
  });

  it("lands a machine's configuration and log level on that machine only; a defaults change reaches all", async () => {
    const own = await kv.put(configKeyForMachine(TARGET), JSON.stringify({ logLevel: "error", heartbeatSeconds: 17 }));
    await waitFor(
      "the target applied its own configuration",
      () => configOf(TARGET).revision === own && configOf(TARGET).status === "APPLIED",
    );
    // The fleet's shared logger keeps its level: the target's level is its own.
    expect(logger.level).toBe("info");
    for (const entry of fleet.agents)
      if (entry.machineId !== TARGET) expect(configOf(entry.machineId)).toEqual({ revision: 0, status: undefined });

    // Every agent logs its reconnect at info: all do but the target, whose level is now error.
    const linesBeforeRestart = lines.length;
    const restartedAtMs = Date.now();
    await server.restart();
    await waitFor(
      "every agent reconnected",
      () =>
        fleet.agents.every(
          (entry) => (fleet.status(entry.machineId)?.connection.reconnects ?? 0) >= 1 && entry.connected,
        ),
      60_000,
    );
    // Counted from each agent's own reconnect: the reads before the restart no longer count.
    await waitFor("every agent read its command feeds again", () => fleet.summary().feedsRead === AGENTS, 60_000);
    expect(fleet.summary().feedsReadLatestAtMs).toBeGreaterThan(restartedAtMs);
    const since = lines.slice(linesBeforeRestart);
    for (const entry of fleet.agents) {
      expect(
        since.filter((line) => line.machineId === entry.machineId && line.msg === "reconnected to NATS"),
      ).toHaveLength(entry.machineId === TARGET ? 0 : 1);
    }
    expect(
      since.filter((line) => line.machineId === TARGET && line.level !== "error" && line.level !== "fatal"),
    ).toEqual([]);

    // The operator's own connection went down with the server too, and may still be waiting to
    // reconnect (the client waits 2 s between attempts; the agents' links retry sooner): a put made
    // in that window was never answered (seen on a loaded machine). A connection of its own now.
    await operator.close();
    operator = await connect({ servers: server.url });
    kv = await new Kvm(operator).open(AGENT_CONFIG_BUCKET);

    // After this revision every agent has seen everything before it: what it then runs is final.
    const defaults = await kv.put(CONFIG_DEFAULTS_KEY, JSON.stringify({ heartbeatSeconds: 45 }));
    await waitFor("every agent applied the defaults", () => everyAgentApplied(defaults), 60_000);
    for (const entry of fleet.agents) {
      expect(fleet.status(entry.machineId)?.heartbeatSeconds).toBe(entry.machineId === TARGET ? 17 : 45);
    }
    const appliedLogs = (machineId: string): number =>
      lines.filter(
        (line) =>
          line.machineId === machineId && line.msg === "remote configuration applied" && line.revision === defaults,
      ).length;
    for (const entry of fleet.agents) expect(appliedLogs(entry.machineId)).toBe(entry.machineId === TARGET ? 0 : 1);
  });

  it("sends each agent's events under its own machine id and subjects, with exact counts and gap-free sequences per machine", async () => {
    await waitFor("every outbox drained", () => fleet.summary().outboxPending === 0, 60_000);
    const messages: StoredMessage[] = [];
    for (const stream of PLATFORM_STREAMS) messages.push(...(await readStream(operator, stream.name)));
    const byMachine = new Map<string, StoredMessage[]>();
    for (const message of messages) {
      const machineId = message.headers[EventHeader.machineId] as string;
      // The subject's machine token is the sender's own.
      expect(message.subject.split(".")[1]).toBe(machineId);
      byMachine.set(machineId, [...(byMachine.get(machineId) ?? []), message]);
    }
    expect([...byMachine.keys()].toSorted()).toEqual(fleet.agents.map((entry) => entry.machineId).toSorted());
    for (const [machineId, own] of byMachine) {
      const ofType = (type: string): StoredMessage[] =>
        own.filter((message) => message.headers[EventHeader.eventType] === type);
      expect(ofType("installed-agent").map((message) => message.body)).toEqual([
        { machineId, agentType: "edge-agent", version: expect.any(String) },
      ]);
      expect(ofType("hostname").map((message) => message.body)).toEqual([{ hostname: `${machineId}.simulated` }]);
      const connectionEvents = ofType("client-connection").map(
        (message) => message.body as { type: string; client: { name: string } },
      );
      expect(connectionEvents.map((event) => event.type).toSorted()).toEqual(["CONNECT", "DISCONNECT", "RECONNECT"]);
      expect(new Set(connectionEvents.map((event) => event.client.name))).toEqual(new Set([machineId]));
      // The target applied its own key and the defaults; every other agent only the defaults.
      expect(ofType("config.status")).toHaveLength(machineId === TARGET ? 2 : 1);
      expect(own.map((message) => Number(message.headers[EventHeader.sequence])).toSorted((a, b) => a - b)).toEqual(
        Array.from({ length: own.length }, (_, index) => index + 1),
      );
    }
  });
});
