import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import type { DeviceState } from "../../../src/bridge/devices/device-state.ts";
import { DEVICES_SHARD } from "../../../src/bridge/devices/devices-processor.ts";
import { ensureTopics } from "../../../src/bridge/kafka/topics.ts";
import { loadBridgeSettings } from "../../../src/bridge/settings/load-bridge-settings.ts";
import { DEFAULT_TOPICS, EventHeader, EventType } from "../../../src/contracts/index.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type BridgeProcess, runBridgeCli, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { bridgeStatuses, transactionsCommittedBy, waitForCaughtUp } from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { type PinotClusterHandle, startPinotCluster } from "../../helpers/pinot-cluster.ts";
import { pinotConsumedAll, queryCount, querySql, resultRecords } from "../../helpers/pinot-query.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const AGENTS = 20;
const HEARTBEAT_SECONDS = 2;
const MISSED_HEARTBEATS = 3;
/** How long rows already in Kafka may take to become queryable; only bounds a failing test. */
const QUERYABLE_TIMEOUT_MS = 120_000;

const machineIdOf = (index: number): string => `pinot-agent-${String(index).padStart(3, "0")}`;
/** Even agents belong to acme (their organization tag), odd ones only say their site. */
const tagsOf = (index: number): Record<string, string> =>
  index % 2 === 0 ? { organization: "acme", site: "lab" } : { site: "edge" };

interface SentEvents {
  readonly telemetry: ReadonlySet<string>;
  readonly events: ReadonlySet<string>;
}

/**
 * Issue #13 with the real thing at every step: 20 `edge-agent run` processes (their own
 * telemetry schedule, inventory, heartbeats and outboxes) -> one nats-server with a system account
 * -> the real bridge -> Kafka -> Pinot 0.11, tables made by `pinot-setup`. What the agents sent is
 * what JetStream stored from them; Pinot must hold exactly those event ids, once each, after a
 * kill -9 of the bridge mid-stream. An agent frozen (SIGSTOP: its connection stays open, it just
 * stops talking) turns OFFLINE from missed heartbeats; one killed -9 turns OFFLINE from the
 * server's own DISCONNECT.
 */
describe("real agents into a real Pinot", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let pinot: PinotClusterHandle;
  let observer: NatsConnection;
  let appUrl: string;
  let systemUrl: string;
  let settingsDir: string;
  const agents: AgentProcess[] = [];
  const bridges: BridgeProcess[] = [];
  const machineIds = Array.from({ length: AGENTS }, (_, index) => machineIdOf(index));

  const bridgeEnv = (): Record<string, string> => ({
    EDGE_BRIDGE_NATS_URL: appUrl,
    EDGE_BRIDGE_SYSTEM_NATS_URL: systemUrl,
    EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
    EDGE_BRIDGE_KAFKA_PARTITIONS: "3",
    EDGE_BRIDGE_INSTANCE_ID: "pinot-agents",
    EDGE_BRIDGE_LEASE_SECONDS: "3",
    EDGE_BRIDGE_TENANT_ID: "tenant-1",
    EDGE_BRIDGE_ORGANIZATION_ID: "org-default",
    EDGE_BRIDGE_MISSED_HEARTBEATS: String(MISSED_HEARTBEATS),
  });
  const startBridge = async (): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess(bridgeEnv());
    bridges.push(bridge);
    return bridge;
  };
  const committedBy = (bridge: BridgeProcess): Promise<number> => transactionsCommittedBy(observer, bridge.child.pid);
  const count = (sql: string): Promise<number> => queryCount(pinot.brokerUrl, sql);
  const inList = `(${machineIds.map((machineId) => `'${machineId}'`).join(", ")})`;
  const devices = async (): Promise<Map<string, Record<string, unknown>>> => {
    const result = await querySql(
      pinot.brokerUrl,
      `SELECT machineId, status, osType, tags, tagKeyValues, organizationId, ingestionTime FROM devices LIMIT 1000`,
    );
    return new Map(resultRecords(result).map((row) => [String(row.machineId), row]));
  };

  /** What the bridge holds of a machine (its devices bucket). */
  const deviceState = async (machineId: string): Promise<DeviceState | null> => {
    const entry = await (await new Kvm(observer).open("edge-bridge-devices")).get(machineId);
    return entry?.operation === "PUT" ? entry.json<DeviceState>() : null;
  };
  /** Every event the agents got into JetStream, by the Pinot table it belongs in. */
  const sentEvents = async (): Promise<SentEvents> => {
    const telemetry = new Set<string>();
    const events = new Set<string>();
    const ours = new Set(machineIds);
    for (const stream of EVENT_STREAMS) {
      for (const message of await readStream(observer, stream)) {
        const machineId = message.subject.split(".")[1] ?? "";
        const eventId = message.headers[EventHeader.eventId];
        const eventType = message.headers[EventHeader.eventType];
        if (!ours.has(machineId) || !eventId || eventType === EventType.inventory) continue;
        (eventType === EventType.telemetry ? telemetry : events).add(eventId);
      }
    }
    return { telemetry, events };
  };
  const eventIdsIn = async (table: string): Promise<string[]> => {
    const result = await querySql(
      pinot.brokerUrl,
      `SELECT eventId FROM ${table} WHERE machineId IN ${inList} LIMIT 1000000`,
    );
    return result.rows.map((row) => String(row[0]));
  };

  beforeAll(async () => {
    // As a platform runs it: the system account, and in APP the bridge's user and one identity per
    // machine, named after its machine id (the server's DISCONNECT of a machine names that identity).
    const configLines = [
      "accounts {",
      "  SYS: { users: [{ user: sys, password: sys }] }",
      "  APP: { jetstream: enabled, users: [",
      "    { user: app, password: app }",
      ...machineIds.map((machineId) => `    { user: ${machineId}, password: ${machineId} }`),
      "  ] }",
      "}",
      "system_account: SYS",
    ];
    [nats, kafka, pinot] = await Promise.all([
      startNatsServer({ configLines }),
      startKafkaBroker(),
      startPinotCluster(),
    ]);
    appUrl = `nats://app:app@127.0.0.1:${nats.port}`;
    systemUrl = `nats://sys:sys@127.0.0.1:${nats.port}`;
    const streams = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: appUrl });
    expect(streams.code, streams.stderr).toBe(0);
    observer = await connect({
      servers: `nats://127.0.0.1:${nats.port}`,
      user: "app",
      pass: "app",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
    });
    settingsDir = await mkdtemp(join(tmpdir(), "edge-bridge-pinot-agents-"));
    const env = { ...bridgeEnv(), EDGE_BRIDGE_DATA_DIR: settingsDir, EDGE_BRIDGE_CONFIG_DIR: settingsDir };
    await ensureTopics(loadBridgeSettings({ env, flags: {}, privileged: false }).settings, silentLogger());
    const setup = await runBridgeCli(["pinot-setup", "--controller", pinot.controllerUrl], env, 240_000);
    expect(setup.code, `${setup.stdout}\n${setup.stderr}`).toBe(0);
  }, 300_000);

  afterAll(async () => {
    for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill("SIGCONT");
    await Promise.all([...agents.splice(0), ...bridges.splice(0)].map((process) => process.dispose()));
    await observer?.close();
    await pinot?.dispose();
    await kafka?.dispose();
    await nats?.dispose();
    if (settingsDir) await rm(settingsDir, { recursive: true, force: true });
  });

  it("20 agents: devices shows each one's status, osType and tags; a frozen agent turns OFFLINE from missed heartbeats, a killed one at its DISCONNECT; rows exact after a bridge kill -9", async () => {
    await startBridge();
    for (const [index, machineId] of machineIds.entries()) {
      agents.push(
        await startAgentProcess({
          EDGE_AGENT_NATS_URL: `nats://${machineId}:${machineId}@127.0.0.1:${nats.port}`,
          EDGE_AGENT_MACHINE_ID: machineId,
          EDGE_AGENT_TAGS: Object.entries(tagsOf(index))
            .map(([key, value]) => `${key}=${value}`)
            .join(","),
          EDGE_AGENT_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
          // A sample every 2 s (cron with seconds), so the stream is steady while the bridge dies.
          EDGE_AGENT_TELEMETRY_SCHEDULE: "*/2 * * * * *",
          EDGE_AGENT_LOG_LEVEL: "warn",
        }),
      );
    }

    // Each agent's own inventory and presence reach devices: status, osType and tags.
    const online = await waitFor(
      "every agent ONLINE in devices with its inventory",
      async () => {
        const rows = await devices().catch(() => new Map<string, Record<string, unknown>>());
        return (
          machineIds.every(
            (machineId) => rows.get(machineId)?.status === "ONLINE" && rows.get(machineId)?.osType === "LINUX",
          ) && rows
        );
      },
      QUERYABLE_TIMEOUT_MS,
      1_000,
    );
    for (const [index, machineId] of machineIds.entries()) {
      const tags = tagsOf(index);
      expect(online.get(machineId)).toMatchObject({
        status: "ONLINE",
        osType: "LINUX",
        organizationId: tags.organization ?? "org-default",
        tags: Object.keys(tags),
        tagKeyValues: Object.entries(tags).map(([key, value]) => `${key}:${value}`),
      });
    }

    // kill -9 of the bridge while the agents keep sending; a new one takes over from the checkpoint.
    const first = bridges[0] as BridgeProcess;
    const before = await committedBy(first);
    await waitFor(
      "the bridge commits more of the agents' stream",
      async () => (await committedBy(first)) > before + 5,
      60_000,
      200,
    );
    await first.stop("SIGKILL");
    // The agents keep sending with no bridge: a round of samples from each waits for the next one.
    const telemetryStored = async (): Promise<number> =>
      (await (await jetstreamManager(observer)).streams.info("TELEMETRY")).state.last_seq;
    const storedAtKill = await telemetryStored();
    await waitFor(
      "a round of samples sent while no bridge runs",
      async () => (await telemetryStored()) >= storedAtKill + AGENTS,
      60_000,
      200,
    );
    const second = await startBridge();
    // The new owner of the devices shard gives every machine a full grace period when it takes over:
    // freeze the agent only once it judges, so its clock starts at a heartbeat it saw.
    await waitFor(
      "the new bridge holds the devices shard",
      async () => {
        const statuses = await bridgeStatuses(observer).catch(() => []);
        return statuses.find((status) => status.pid === second.child.pid)?.shardsHeld.includes(DEVICES_SHARD) === true;
      },
      60_000,
      200,
    );

    // Frozen: the process is stopped, its TCP connection stays open, the server notices nothing.
    const frozenIndex = 1;
    const frozen = machineIdOf(frozenIndex);
    let heartbeatsSeen = 0;
    const heartbeats: Subscription = observer.subscribe(`machine.${frozen}.heartbeat`, {
      callback: () => void heartbeatsSeen++,
    });
    await waitFor(`two heartbeats from ${frozen}`, () => heartbeatsSeen >= 2, 30_000);
    (agents[frozenIndex] as AgentProcess).child.kill("SIGSTOP");
    await waitFor(
      `${frozen} OFFLINE in devices`,
      async () => (await devices()).get(frozen)?.status === "OFFLINE",
      QUERYABLE_TIMEOUT_MS,
      500,
    );
    heartbeats.unsubscribe();
    // From its missed heartbeats: its connection is open, the server saw no DISCONNECT. When the
    // bridge judges (after the silence, by its next check) is pinned on a manual clock in
    // test/integration/bridge/presence.test.ts; how long it takes on a real one is a benchmark
    // (npm run bench -- presence).
    expect((await deviceState(frozen))?.statusReason).toBe("missed-heartbeats");

    // Killed: the kernel closes its socket, the server publishes DISCONNECT, the row follows.
    const killedIndex = 2;
    const killed = machineIdOf(killedIndex);
    await (agents[killedIndex] as AgentProcess).stop("SIGKILL");
    await waitFor(
      `${killed} OFFLINE in devices`,
      async () => (await devices()).get(killed)?.status === "OFFLINE",
      QUERYABLE_TIMEOUT_MS,
      500,
    );
    const statuses = await devices();
    expect(machineIds.filter((machineId) => statuses.get(machineId)?.status !== "ONLINE").sort()).toEqual(
      [frozen, killed].sort(),
    );

    // The rest stop cleanly (the frozen one thawed first, so it leaves like the others); then what
    // JetStream holds from them is what they sent (an event still in an outbox was not sent yet).
    (agents[frozenIndex] as AgentProcess).child.kill("SIGCONT");
    const exits = await Promise.all(
      agents.filter((_, index) => index !== killedIndex).map((agent) => agent.stop("SIGTERM")),
    );
    expect(
      exits.every((exit) => exit.code === 0),
      JSON.stringify(exits),
    ).toBe(true);
    const sent = await sentEvents();
    expect(sent.telemetry.size).toBeGreaterThan(AGENTS * 5);

    await waitFor(
      "Pinot to hold every event the agents sent",
      async () =>
        (await count(`SELECT COUNT(*) FROM machine_telemetry WHERE machineId IN ${inList}`)) >= sent.telemetry.size &&
        (await count(`SELECT COUNT(*) FROM machine_events WHERE machineId IN ${inList}`)) >= sent.events.size,
      QUERYABLE_TIMEOUT_MS,
      1_000,
    ).catch((error: unknown) => {
      throw new Error(
        `${(error as Error).message}\nsent ${sent.telemetry.size} telemetry, ${sent.events.size} events\n${pinot.output()}`,
      );
    });
    // Final once the bridge has nothing left to write and Pinot has consumed all it wrote: no row can come later.
    await waitForCaughtUp(observer, { shards: EVENT_STREAMS.length + 1, timeoutMs: 60_000 });
    await waitFor(
      "Pinot to consume every record committed to its topics",
      async () =>
        (await pinotConsumedAll(pinot.controllerUrl, "machine_telemetry", kafka.bootstrap, DEFAULT_TOPICS.telemetry)) &&
        (await pinotConsumedAll(pinot.controllerUrl, "machine_events", kafka.bootstrap, DEFAULT_TOPICS.events)),
      QUERYABLE_TIMEOUT_MS,
      1_000,
    );
    // Exactly the event ids sent, each once: no row lost, none added by the kill -9.
    const telemetryRows = await eventIdsIn("machine_telemetry");
    const eventRows = await eventIdsIn("machine_events");
    expect(telemetryRows.length).toBe(sent.telemetry.size);
    expect(new Set(telemetryRows)).toEqual(sent.telemetry);
    expect(eventRows.length).toBe(sent.events.size);
    expect(new Set(eventRows)).toEqual(sent.events);
    const byType = resultRecords(
      await querySql(
        pinot.brokerUrl,
        `SELECT eventType, COUNT(*) AS sent FROM machine_events WHERE machineId IN ${inList} GROUP BY eventType LIMIT 100`,
      ),
    );
    console.info(`pinot-real-agents: ${sent.telemetry.size} telemetry rows, events by type ${JSON.stringify(byType)}`);
    // Every agent announced itself and reported its connection.
    for (const eventType of [EventType.installedAgent, EventType.clientConnection]) {
      expect(
        await count(
          `SELECT COUNT(DISTINCT machineId) FROM machine_events WHERE eventType = '${eventType}' AND machineId IN ${inList}`,
        ),
      ).toBe(AGENTS);
    }
  }, 600_000);
});
