import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import { ensureTopics } from "../../../src/bridge/kafka/topics.ts";
import * as operatorQueries from "../../../src/bridge/pinot/operator-queries.ts";
import { loadBridgeSettings } from "../../../src/bridge/settings/load-bridge-settings.ts";
import { DEFAULT_TOPICS, EventType } from "../../../src/contracts/index.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { type SimulatedFleet, startSimulatedFleet } from "../../fixtures/bridge/simulated-fleet.ts";
import { type BridgeProcess, runBridgeCli, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { transactionsCommittedBy, waitForCaughtUp } from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { type PinotClusterHandle, startPinotCluster } from "../../helpers/pinot-cluster.ts";
import { type PinotResult, pinotConsumedAll, queryCount, querySql, resultRecords } from "../../helpers/pinot-query.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { repeatEvery, waitFor } from "../../helpers/wait-for.ts";

const MACHINES = 20;
const TABLES = ["devices", "machine_telemetry", "machine_events"] as const;
/** How long rows already in Kafka may take to become queryable; only bounds a failing test. */
const QUERYABLE_TIMEOUT_MS = 120_000;
/** The bridge's shards: one per event stream, and devices. */
const SHARDS = EVENT_STREAMS.length + 1;

/** A result as a compact text table: a header line, then one line per row, cells joined by " | ". */
function textTable(result: PinotResult): string {
  return [result.columns, ...result.rows]
    .map((row) => row.map((cell) => (Array.isArray(cell) ? cell.join(",") : String(cell))).join(" | "))
    .join("\n");
}

/** Pinot's PERCENTILE: the value at index floor(n * p / 100) of the sorted values. */
function pinotPercentile(values: readonly number[], percentile: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * percentile) / 100))] as number;
}

/** Even machines belong to acme (their organization tag), odd ones only say their site, x9 have no tags at all. */
const tagsOf = (machineId: string): Record<string, string> => {
  const index = Number(machineId.slice(-3));
  if (index % 10 === 9) return {};
  return index % 2 === 0 ? { organization: "acme", site: "lab" } : { site: "edge" };
};

/**
 * Issue #13: rows reach Pinot. The real bridge writes what a simulated fleet publishes into NATS to
 * Kafka; Pinot 0.11 consumes the topics (read_committed) into the tables `pinot-setup` created.
 * Counts are exact, devices hold one row per machine, and a kill -9 of the bridge mid-stream adds
 * no row (Kafka transactions, read_committed, and dedup on eventId).
 */
describe("edge-bridge into a real Pinot: end to end", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let pinot: PinotClusterHandle;
  let observer: NatsConnection;
  let fleet: SimulatedFleet;
  let settingsDir: string;
  let stopHeartbeats: (() => void) | undefined;
  /** Machines the test stopped heartbeating for. */
  const silenced = new Set<string>();
  /** When the first test began emitting: every event the fleet sends is stamped later. */
  let firstEmittedAtMs = 0;
  const bridges: BridgeProcess[] = [];

  const bridgeEnv = (): Record<string, string> => ({
    EDGE_BRIDGE_NATS_URL: nats.url,
    EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
    EDGE_BRIDGE_KAFKA_PARTITIONS: "3",
    EDGE_BRIDGE_INSTANCE_ID: "pinot-e2e",
    EDGE_BRIDGE_LEASE_SECONDS: "3",
    EDGE_BRIDGE_TENANT_ID: "tenant-1",
    EDGE_BRIDGE_ORGANIZATION_ID: "org-default",
    // Heartbeats are sent every second by the test (declaring 1 s); five missed ones make a machine OFFLINE.
    EDGE_BRIDGE_HEARTBEAT_SECONDS: "1",
    EDGE_BRIDGE_MISSED_HEARTBEATS: "5",
  });
  const startBridge = async (): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess(bridgeEnv());
    bridges.push(bridge);
    return bridge;
  };
  const committedBy = (bridge: BridgeProcess): Promise<number> => transactionsCommittedBy(observer, bridge.child.pid);
  /** Segments of a table its server serves as ONLINE (committed), not CONSUMING. */
  const committedSegments = async (table: string): Promise<string[]> => {
    const view = (await (await fetch(`${pinot.controllerUrl}/tables/${table}/externalview`)).json()) as {
      REALTIME?: Record<string, Record<string, string>>;
    };
    return Object.entries(view.REALTIME ?? {})
      .filter(([, replicas]) => Object.values(replicas).includes("ONLINE"))
      .map(([segment]) => segment);
  };
  const count = (sql: string): Promise<number> => queryCount(pinot.brokerUrl, sql);

  const expectedCounts = (): { telemetry: number; events: Record<string, number> } => {
    const events: Record<string, number> = {};
    let telemetry = 0;
    for (const record of fleet.emitted) {
      if (record.type === EventType.telemetry) telemetry++;
      else if (record.type !== EventType.inventory) events[record.type] = (events[record.type] ?? 0) + 1;
    }
    return { telemetry, events };
  };
  const eventCountsInPinot = async (): Promise<Record<string, number>> => {
    const result = await querySql(
      pinot.brokerUrl,
      "SELECT eventType, COUNT(*) FROM machine_events GROUP BY eventType LIMIT 100",
    );
    return Object.fromEntries(result.rows.map(([eventType, rows]) => [String(eventType), Number(rows)]));
  };
  const total = (counts: Record<string, number>): number =>
    Object.values(counts).reduce((sum, value) => sum + value, 0);

  /** Waits until Pinot holds at least what was sent and can get no more, and returns what it holds then. */
  const settledCounts = async (): Promise<{ telemetry: number; events: Record<string, number> }> => {
    const expected = expectedCounts();
    await waitFor(
      "Pinot to hold every row sent",
      async () =>
        (await count("SELECT COUNT(*) FROM machine_telemetry")) >= expected.telemetry &&
        total(await eventCountsInPinot()) >= total(expected.events),
      QUERYABLE_TIMEOUT_MS,
      1_000,
    ).catch(async (error: unknown) => {
      const held = {
        telemetry: await count("SELECT COUNT(*) FROM machine_telemetry").catch(String),
        events: await eventCountsInPinot().catch(String),
      };
      throw new Error(
        `${(error as Error).message}\nexpected ${JSON.stringify(expected)}\nheld ${JSON.stringify(held)}\n${pinot.output()}`,
      );
    });
    // Final once the bridge has nothing left to write and Pinot has consumed all it wrote: no row can come later.
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    await waitFor(
      "Pinot to consume every record committed to its topics",
      async () =>
        (await pinotConsumedAll(pinot.controllerUrl, "machine_telemetry", kafka.bootstrap, DEFAULT_TOPICS.telemetry)) &&
        (await pinotConsumedAll(pinot.controllerUrl, "machine_events", kafka.bootstrap, DEFAULT_TOPICS.events)),
      QUERYABLE_TIMEOUT_MS,
      1_000,
    );
    return { telemetry: await count("SELECT COUNT(*) FROM machine_telemetry"), events: await eventCountsInPinot() };
  };

  beforeAll(async () => {
    [nats, kafka, pinot] = await Promise.all([startNatsServer(), startKafkaBroker(), startPinotCluster()]);
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    await createPlatformStreams(observer);
    settingsDir = await mkdtemp(join(tmpdir(), "edge-bridge-pinot-e2e-"));
    const env = { ...bridgeEnv(), EDGE_BRIDGE_DATA_DIR: settingsDir, EDGE_BRIDGE_CONFIG_DIR: settingsDir };
    await ensureTopics(loadBridgeSettings({ env, flags: {}, privileged: false }).settings, silentLogger());
    const setup = await runBridgeCli(["pinot-setup", "--controller", pinot.controllerUrl], env, 240_000);
    expect(setup.code, `${setup.stdout}\n${setup.stderr}`).toBe(0);
    fleet = await startSimulatedFleet({
      connection: observer,
      machines: MACHINES,
      prefix: "pinot",
      inventoryTags: tagsOf,
    });
    // The agents' heartbeats, as core NATS messages; a silenced machine stops beating.
    stopHeartbeats = repeatEvery(1_000, "the machines' heartbeats, every second as they say", () => {
      for (const machineId of fleet.machineIds) {
        if (!silenced.has(machineId))
          observer.publish(`machine.${machineId}.heartbeat`, JSON.stringify({ intervalSeconds: 1 }));
      }
    });
  }, 300_000);

  afterAll(async () => {
    stopHeartbeats?.();
    await Promise.all(bridges.splice(0).map((bridge) => bridge.dispose()));
    await fleet?.stop();
    await observer?.close();
    await pinot?.dispose();
    await kafka?.dispose();
    await nats?.dispose();
    if (settingsDir) await rm(settingsDir, { recursive: true, force: true });
  });

  it("every telemetry sample and event sent is a row in Pinot, exactly once; devices holds one row per machine", async () => {
    await startBridge();
    const emittedAt = Date.now();
    firstEmittedAtMs = emittedAt;
    // 50 events per machine: 36 telemetry samples, two RECONNECTs and two inventories each.
    await fleet.emit(50 * MACHINES);
    await waitFor(
      "the first telemetry row queryable",
      async () => (await count("SELECT COUNT(*) FROM machine_telemetry")) > 0,
      QUERYABLE_TIMEOUT_MS,
      200,
    );
    await fleet.drained(60_000);

    const expected = expectedCounts();
    expect(expected.telemetry).toBe(36 * MACHINES);
    const held = await settledCounts();
    expect(held).toEqual(expected);
    expect(await count("SELECT COUNT(DISTINCT eventId) FROM machine_telemetry")).toBe(expected.telemetry);
    // machine_events' time column is the bridge's ISO 8601 string: a range over it finds every row.
    const since = new Date(emittedAt - 60_000).toISOString();
    // A part the device could not read is null in Pinot, not 0 (nullHandlingEnabled).
    expect(await count("SELECT COUNT(*) FROM machine_telemetry WHERE outboxOldestPendingAgeMs IS NULL")).toBe(
      expected.telemetry,
    );
    expect(await count(`SELECT COUNT(*) FROM machine_events WHERE "timestamp" >= '${since}'`)).toBe(
      total(expected.events),
    );

    const devices = await waitFor(
      "one devices row per machine, with its inventory",
      async () => {
        const sql =
          "SELECT machineId, tenantId, organizationId, status, osType, deviceType, tags, tagKeyValues FROM devices LIMIT 1000";
        const result = await querySql(pinot.brokerUrl, sql);
        const rows = resultRecords(result);
        return rows.length === MACHINES && rows.every((row) => row.osType === "LINUX") && rows;
      },
      QUERYABLE_TIMEOUT_MS,
      1_000,
    );
    expect(devices.map((row) => row.machineId).sort()).toEqual([...fleet.machineIds].sort());
    for (const row of devices) {
      const tags = tagsOf(String(row.machineId));
      expect(row).toMatchObject({
        tenantId: "tenant-1",
        organizationId: tags.organization ?? "org-default",
        status: "ONLINE",
        osType: "LINUX",
        deviceType: "SERVER",
        // Pinot 0.11 has no empty multi-value: a machine without tags reads as its default null value, ["null"].
        tags: Object.keys(tags).length > 0 ? Object.keys(tags) : ["null"],
        tagKeyValues:
          Object.keys(tags).length > 0 ? Object.entries(tags).map(([key, value]) => `${key}:${value}`) : ["null"],
      });
    }
    const untagged = fleet.machineIds.filter((machineId) => Object.keys(tagsOf(machineId)).length === 0).length;
    expect(untagged).toBe(2);
    // ... and with nullHandlingEnabled, IS NULL finds it (the way to ask for untagged machines).
    expect(await count("SELECT COUNT(*) FROM devices WHERE tags IS NULL")).toBe(untagged);
    expect(await count("SELECT COUNT(*) FROM devices WHERE tags = 'site'")).toBe(MACHINES - untagged);
  }, 300_000);

  it("kill -9 of the bridge mid-stream, then a restart: the counts in Pinot are still exact", async () => {
    const running = bridges[bridges.length - 1] as BridgeProcess;
    const before = await committedBy(running);
    const emitting = fleet.emit(100 * MACHINES);
    await waitFor(
      "the bridge commits part of the second batch",
      async () => (await committedBy(running)) > before,
      60_000,
      200,
    );
    await running.stop("SIGKILL");
    await emitting;
    // More while it is down: they wait in JetStream.
    await fleet.emit(20 * MACHINES);
    await startBridge();
    await fleet.drained(60_000);

    const expected = expectedCounts();
    expect(fleet.emitted.length).toBe(170 * MACHINES);
    const held = await settledCounts();
    expect(held).toEqual(expected);
    expect(await count("SELECT COUNT(DISTINCT eventId) FROM machine_events")).toBe(total(expected.events));
    expect(await count("SELECT COUNT(*) FROM devices")).toBe(MACHINES);

    // Sealed segments: Pinot parses the time columns, builds the segments and keeps its dedup and
    // upsert metadata across the new consuming segments; still no row more, no row less.
    for (const table of TABLES) {
      const response = await fetch(`${pinot.controllerUrl}/tables/${table}/forceCommit`, {
        method: "POST",
        signal: AbortSignal.timeout(60_000),
      });
      expect(response.ok, await response.text()).toBe(true);
    }
    for (const table of TABLES) {
      await waitFor(
        `${table}'s first segments committed`,
        async () => (await committedSegments(table)).length >= 3,
        QUERYABLE_TIMEOUT_MS,
        1_000,
      );
    }
    // Building a segment parses its time column (for events, `yyyy-MM-dd'T'HH:mm:ss.SSSZ` against what the bridge writes).
    for (const segment of await committedSegments("machine_events")) {
      const metadata = (await (
        await fetch(`${pinot.controllerUrl}/segments/machine_events/${segment}/metadata`)
      ).json()) as Record<string, unknown>;
      const endMs = Number(metadata["segment.end.time"]);
      expect(endMs, JSON.stringify(metadata)).toBeGreaterThanOrEqual(firstEmittedAtMs);
      expect(endMs).toBeLessThanOrEqual(Date.now());
    }
    await fleet.emit(10 * MACHINES);
    await fleet.drained(60_000);
    expect(await settledCounts()).toEqual(expectedCounts());
    expect(await count("SELECT COUNT(*) FROM devices")).toBe(MACHINES);
  }, 300_000);

  it("a machine that stops heartbeating turns OFFLINE in devices; the others stay ONLINE", async () => {
    const [quiet] = fleet.machineIds as [string];
    silenced.add(quiet);
    const statuses = await waitFor(
      `${quiet} OFFLINE in devices`,
      async () => {
        const result = await querySql(pinot.brokerUrl, "SELECT machineId, status FROM devices LIMIT 1000");
        const byMachine = new Map(result.rows.map(([machineId, status]) => [String(machineId), String(status)]));
        return byMachine.get(quiet) === "OFFLINE" && byMachine;
      },
      60_000,
      1_000,
    );
    expect(statuses.size).toBe(MACHINES);
    expect([...statuses].filter(([, status]) => status !== "ONLINE").map(([machineId]) => machineId)).toEqual([quiet]);
  }, 120_000);

  it("the operator queries (README) answer what the fleet sent", async () => {
    const [quiet, refused, behind, failedA, failedB, installed] = fleet.machineIds as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    // A configuration revision pushed after the mix's (whose highest is 177): applied everywhere but on
    // two machines, one of which turned it down and one of which never answered.
    const pushed = 5_000;
    const timestamp = (): string => new Date().toISOString();
    for (const machineId of fleet.machineIds) {
      if (machineId === behind) continue;
      const status = machineId === refused ? "REJECTED" : "APPLIED";
      await fleet.emitEvent(machineId, EventType.configStatus, {
        revision: pushed,
        status,
        ...(status === "REJECTED" ? { error: "schema" } : {}),
        timestamp: timestamp(),
      });
    }
    // Tool installations: two failed, one made it.
    for (const [machineId, state] of [
      [failedA, "FAILED"],
      [failedB, "FAILED"],
      [installed, "INSTALLED"],
    ] as const) {
      await fleet.emitEvent(machineId, EventType.toolInstallationStatus, {
        toolAgentId: `agent-${machineId}`,
        toolType: "MESHCENTRAL",
        version: "1.1.0",
        state,
        ...(state === "FAILED" ? { error: "download refused: 403" } : {}),
        timestamp: timestamp(),
      });
    }
    await fleet.drained(60_000);
    expect(await settledCounts()).toEqual(expectedCounts());

    const outputs: Array<[string, PinotResult]> = [];
    const run = async (name: string, sql: string): Promise<PinotResult> => {
      const result = await querySql(pinot.brokerUrl, sql);
      outputs.push([name, result]);
      return result;
    };
    const records = resultRecords;

    // (1) Offline now, by osType: the machine the test silenced.
    const offline = await run("offlineDevicesByOsType", operatorQueries.offlineDevicesByOsType);
    expect(records(offline)).toEqual([{ osType: "LINUX", offline: 1 }]);
    expect(quiet).toBe(fleet.machineIds[0]);

    // (2) A tag: the even machines carry site:lab.
    const lab = await run("devicesWithTag('site:lab')", operatorQueries.devicesWithTag("site:lab"));
    const labMachines = fleet.machineIds.filter((machineId) => tagsOf(machineId).site === "lab");
    expect(labMachines.length).toBe(10);
    expect(records(lab).map((row) => row.machineId)).toEqual(labMachines);
    expect(records(lab).every((row) => row.organizationId === "acme")).toBe(true);

    // (3) CPU p95 per device, last hour: every sample was sent in it; machine k's i-th event of the mix
    // is telemetry when i % 20 < 13, with cpu.totalPercent = i % 100.
    const p95 = await run("cpuP95PerDeviceLastHour", operatorQueries.cpuP95PerDeviceLastHour);
    const p95Rows = records(p95);
    expect(p95Rows.map((row) => row.machineId).sort()).toEqual([...fleet.machineIds].sort());
    for (const row of p95Rows) {
      const samples = fleet.emitted.filter(
        (record) => record.machineId === row.machineId && record.type === EventType.telemetry,
      ).length;
      const sent: number[] = [];
      for (let index = 0; sent.length < samples; index++) if (index % 20 < 13) sent.push(index % 100);
      expect(row, JSON.stringify(row)).toMatchObject({ samples, cpuP95: pinotPercentile(sent, 95) });
    }

    // (4) Tool installations that failed today.
    const failed = await run("failedToolInstallationsToday", operatorQueries.failedToolInstallationsToday);
    expect(
      records(failed)
        .map((row) => row.machineId)
        .sort(),
    ).toEqual([failedA, failedB].sort());
    expect(
      records(failed).every((row) => row.toolType === "MESHCENTRAL" && row.error === "download refused: 403"),
    ).toBe(true);

    // (5) The revision pushed, not applied fleet-wide: the machine that refused it, the one that never answered.
    const notApplied = await run(
      `configRevisionNotApplied(${pushed})`,
      operatorQueries.configRevisionNotApplied(pushed),
    );
    expect(records(notApplied)).toEqual([
      { machineId: refused, appliedRevision: 177, lastReportedRevision: pushed, lastRefusedRevision: pushed },
      { machineId: behind, appliedRevision: 177, lastReportedRevision: 177, lastRefusedRevision: -1 },
    ]);

    if (process.env.PINOT_QUERY_OUTPUT === "1") {
      for (const [name, result] of outputs)
        console.info(`-- ${name}: ${result.rows.length} rows\n${textTable(result)}\n`);
    }
  }, 180_000);
});
