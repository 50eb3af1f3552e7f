import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { Consumer, FetchIsolationLevels, MessagesStreamModes } from "@platformatic/kafka";
import { type ClientConnectionEvent, DEFAULT_TOPICS, EventType } from "../src/contracts/index.ts";
import { type SimulatedFleet, startSimulatedFleet } from "../test/fixtures/bridge/simulated-fleet.ts";
import { startBridgeProcess } from "../test/helpers/bridge-process.ts";
import { startKafkaBroker } from "../test/helpers/kafka-broker.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { createPlatformStreams } from "../test/helpers/streams.ts";
import { quantileOfSorted } from "./quantile.ts";

/**
 * How long after a machine's last heartbeat the bridge writes its OFFLINE row (missed heartbeats),
 * against the silence it is set to wait (missedHeartbeats x the machine's interval), and against
 * the same OFFLINE row made by a DISCONNECT, measured in the same run: the path without the wait.
 * (The test suite only checks, on a manual clock, that the judgment comes after the silence and
 * by the next check: test/integration/bridge/presence.test.ts. This is the figure on a real one.)
 *
 * One nats-server, one Kafka broker, the bridge as a child process (missedHeartbeats 3).
 * BENCH_PRESENCE_PROBES (10) machines, one after the other, each beating every
 * BENCH_PRESENCE_HEARTBEAT_SECONDS (1) s until a read_committed reader of devices-topic gets its
 * ONLINE row, then silent: its OFFLINE row's stamp (ingestionTime: when the bridge judged) and the
 * moment the reader gets it are taken from its last heartbeat. The baseline: as many machines of
 * a simulated fleet (own outboxes) that send CONNECT, then DISCONNECT: DISCONNECT to OFFLINE row read.
 */
export const name = "presence";

const MISSED_HEARTBEATS = 3;
const PROBE_TIMEOUT_MS = 60_000;

function spread(values: readonly number[]): { p50: number | null; p99: number | null; max: number | null } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: quantileOfSorted(sorted, 0.5) ?? null,
    p99: quantileOfSorted(sorted, 0.99) ?? null,
    max: sorted[sorted.length - 1] ?? null,
  };
}

interface DeviceRow {
  readonly status: string;
  readonly ingestionTime: number;
  /** When the reader got it (wall ms). */
  readonly seenAtMs: number;
}

export async function run(): Promise<Record<string, unknown>> {
  const probes = Number(process.env.BENCH_PRESENCE_PROBES ?? 10);
  const heartbeatSeconds = Number(process.env.BENCH_PRESENCE_HEARTBEAT_SECONDS ?? 1);
  const thresholdMs = MISSED_HEARTBEATS * heartbeatSeconds * 1_000;
  const [nats, kafka] = await Promise.all([startNatsServer(), startKafkaBroker()]);
  const connection = await connect({ servers: nats.url });
  let fleet: SimulatedFleet | null = null;
  const rows = new Map<string, DeviceRow[]>();
  const reader = new Consumer({
    clientId: "bench-presence",
    groupId: `bench-presence-${Date.now()}`,
    bootstrapBrokers: [kafka.bootstrap],
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    autocommit: false,
  });
  try {
    await createPlatformStreams(connection);
    const bridge = await startBridgeProcess({
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_INSTANCE_ID: "bench-presence",
      EDGE_BRIDGE_TENANT_ID: "tenant-1",
      EDGE_BRIDGE_MISSED_HEARTBEATS: String(MISSED_HEARTBEATS),
      MALLOC_ARENA_MAX: "2",
    });
    const rowsOf = (machineId: string): DeviceRow[] => rows.get(machineId) ?? [];
    /** Polls until `pick` finds a row of `machineId`; null after the probe's timeout. */
    const rowOf = async (machineId: string, pick: (row: DeviceRow) => boolean): Promise<DeviceRow | null> => {
      const until = Date.now() + PROBE_TIMEOUT_MS;
      while (Date.now() < until) {
        const found = rowsOf(machineId).find(pick);
        if (found) return found;
        await sleep(10);
      }
      return null;
    };

    // The devices topic exists once the bridge has made its topics; read from its start (it is new).
    const until = Date.now() + PROBE_TIMEOUT_MS;
    let stream: Awaited<ReturnType<typeof reader.consume>> | null = null;
    while (stream === null) {
      stream = await reader
        .consume({
          topics: [DEFAULT_TOPICS.devices],
          mode: MessagesStreamModes.EARLIEST,
          isolationLevel: FetchIsolationLevels.READ_COMMITTED,
          autocommit: false,
          maxWaitTime: 20,
        })
        .catch(async (error: unknown) => {
          if (Date.now() > until) throw error;
          await sleep(500);
          return null;
        });
    }
    const reading = stream;
    const watching = (async () => {
      for await (const message of reading) {
        const machineId = message.key?.toString() ?? "";
        if (!message.value) continue;
        const value = JSON.parse(message.value.toString()) as { status?: string; ingestionTime?: number };
        const machineRows = rows.get(machineId) ?? [];
        rows.set(machineId, machineRows);
        machineRows.push({
          status: String(value.status),
          ingestionTime: Number(value.ingestionTime),
          seenAtMs: Date.now(),
        });
      }
    })();

    // Missed heartbeats: beat until ONLINE is read back, then fall silent.
    const stampAfterLastBeat: number[] = [];
    const seenAfterLastBeat: number[] = [];
    let timedOut = 0;
    for (let index = 0; index < probes; index++) {
      const machineId = `presence-probe-${index}`;
      let lastBeatMs = 0;
      const beat = (): void => {
        connection.publish(`machine.${machineId}.heartbeat`, JSON.stringify({ intervalSeconds: heartbeatSeconds }));
        lastBeatMs = Date.now();
      };
      beat();
      const beating = setInterval(beat, heartbeatSeconds * 1_000);
      const online = await rowOf(machineId, (row) => row.status === "ONLINE");
      clearInterval(beating);
      if (online === null) throw new Error(`${machineId} never ONLINE:\n${bridge.output().slice(-2_000)}`);
      const offline = await rowOf(machineId, (row) => row.status === "OFFLINE");
      if (offline === null) {
        timedOut += 1;
        continue;
      }
      stampAfterLastBeat.push(offline.ingestionTime - lastBeatMs);
      seenAfterLastBeat.push(offline.seenAtMs - lastBeatMs);
    }

    // The baseline: the same row from a DISCONNECT event, through an agent's outbox.
    fleet = await startSimulatedFleet({ connection, machines: probes, prefix: "presence-baseline" });
    const event = (machineId: string, type: "CONNECT" | "DISCONNECT"): ClientConnectionEvent => ({
      timestamp: new Date().toISOString(),
      client: { name: machineId },
      type,
      server: nats.url,
    });
    const disconnectToSeen: number[] = [];
    for (const machineId of fleet.machineIds) {
      await fleet.emitEvent(machineId, EventType.clientConnection, event(machineId, "CONNECT"));
      if ((await rowOf(machineId, (row) => row.status === "ONLINE")) === null)
        throw new Error(`${machineId} never ONLINE`);
      const sentAtMs = Date.now();
      await fleet.emitEvent(machineId, EventType.clientConnection, event(machineId, "DISCONNECT"));
      const offline = await rowOf(machineId, (row) => row.status === "OFFLINE");
      if (offline !== null) disconnectToSeen.push(offline.seenAtMs - sentAtMs);
    }

    await reading.close();
    await watching.catch(() => undefined);
    await bridge.stop("SIGTERM");
    await bridge.dispose();
    const stamp = spread(stampAfterLastBeat);
    const seen = spread(seenAfterLastBeat);
    const baseline = spread(disconnectToSeen);
    // What the wait adds to the path: the row read after the last beat, less the same row's way from a DISCONNECT.
    const waitP50Ms = seen.p50 === null || baseline.p50 === null ? null : seen.p50 - baseline.p50;
    return {
      probes,
      timedOut,
      heartbeatSeconds,
      missedHeartbeats: MISSED_HEARTBEATS,
      silenceThresholdMs: thresholdMs,
      offlineStampAfterLastBeatMs: stamp,
      offlineSeenAfterLastBeatMs: seen,
      baselineDisconnectToOfflineSeenMs: baseline,
      waitAddedP50Ms: waitP50Ms,
      waitToThresholdP50Ratio: waitP50Ms === null ? null : Number((waitP50Ms / thresholdMs).toFixed(2)),
      stampToThresholdP50Ratio: stamp.p50 === null ? null : Number((stamp.p50 / thresholdMs).toFixed(2)),
    };
  } finally {
    await reader.close().catch(() => undefined);
    await fleet?.stop();
    await connection.close().catch(() => undefined);
    await kafka.dispose();
    await nats.dispose();
  }
}
