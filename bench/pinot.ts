import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { Consumer, FetchIsolationLevels, MessagesStreamModes } from "@platformatic/kafka";
import { ensureTopics } from "../src/bridge/kafka/topics.ts";
import { loadBridgeSettings } from "../src/bridge/settings/load-bridge-settings.ts";
import { type ClientConnectionEvent, EventType } from "../src/contracts/index.ts";
import { silentLogger } from "../src/runtime/logger.ts";
import { type SimulatedFleet, startSimulatedFleet, telemetrySample } from "../test/fixtures/bridge/simulated-fleet.ts";
import { runBridgeCli, startBridgeProcess } from "../test/helpers/bridge-process.ts";
import { startKafkaBroker } from "../test/helpers/kafka-broker.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { startPinotCluster } from "../test/helpers/pinot-cluster.ts";
import { queryCount, querySql } from "../test/helpers/pinot-query.ts";
import { createPlatformStreams } from "../test/helpers/streams.ts";
import { quantileOfSorted } from "./quantile.ts";

/**
 * Emit-to-queryable latency on this machine: how long after an agent's outbox takes an event
 * until a SQL query on Pinot's broker returns it, for a telemetry sample (a new row in
 * machine_telemetry) and for a status change (a machine's row in devices, a FULL upsert, turning
 * OFFLINE or ONLINE), while a steady load flows through the same path.
 *
 * The path: simulated agents' own durable outboxes -> JetStream -> edge-bridge (a child process)
 * -> Kafka (transactions) -> Pinot 0.11 (read_committed, REALTIME tables made by pinot-setup).
 * The baseline, measured for the same probes in the same run: when a read_committed Kafka reader
 * first sees the record, so the figures split into the bridge's part and Pinot's.
 *
 * BENCH_PINOT_RATE (default 500) events/s of the realistic mix from BENCH_PINOT_MACHINES (50)
 * machines run all along; BENCH_PINOT_PROBES (100) probes of each kind, one at a time, each bounded
 * by 30 s and started at least 300 ms after the last. Pinot is polled every BENCH_PINOT_POLL_MS (20) ms: that is the resolution.
 */
export const name = "pinot";

const PROBE_TIMEOUT_MS = 30_000;
/** Each probe pair starts at least this long after the previous one, so the probes span the load. */
const PROBE_SPACING_MS = 300;
const percentile = (sorted: readonly number[], fraction: number): number | null =>
  quantileOfSorted(sorted, fraction) ?? null;

interface ProbeTimes {
  readonly kafkaMs: number | null;
  readonly pinotMs: number | null;
}

function summary(probes: readonly ProbeTimes[]): Record<string, number | null> {
  const sortedOf = (pick: (probe: ProbeTimes) => number | null): number[] =>
    probes
      .map(pick)
      .filter((value): value is number => value !== null)
      .sort((a, b) => a - b);
  const pinot = sortedOf((probe) => probe.pinotMs);
  const kafka = sortedOf((probe) => probe.kafkaMs);
  const pinotShare = sortedOf((probe) =>
    probe.pinotMs !== null && probe.kafkaMs !== null ? probe.pinotMs - probe.kafkaMs : null,
  );
  const p50 = percentile(pinot, 0.5);
  const kafkaP50 = percentile(kafka, 0.5);
  return {
    probes: probes.length,
    queryable: pinot.length,
    timedOut: probes.length - pinot.length,
    emitToQueryableP50Ms: p50,
    emitToQueryableP99Ms: percentile(pinot, 0.99),
    emitToQueryableMaxMs: pinot[pinot.length - 1] ?? null,
    baselineEmitToKafkaP50Ms: kafkaP50,
    baselineEmitToKafkaP99Ms: percentile(kafka, 0.99),
    pinotShareP50Ms: percentile(pinotShare, 0.5),
    pinotShareP99Ms: percentile(pinotShare, 0.99),
    queryableToKafkaP50Ratio:
      p50 !== null && kafkaP50 !== null && kafkaP50 > 0 ? Number((p50 / kafkaP50).toFixed(2)) : null,
  };
}

/** Polls until `check` holds, every `pollMs`; the elapsed ms since `fromMs`, or null after the timeout. */
async function timeUntil(check: () => Promise<boolean>, fromMs: number, pollMs: number): Promise<number | null> {
  while (Date.now() - fromMs < PROBE_TIMEOUT_MS) {
    if (await check().catch(() => false)) return Date.now() - fromMs;
    await sleep(pollMs);
  }
  return null;
}

export async function run(): Promise<Record<string, unknown>> {
  const rate = Number(process.env.BENCH_PINOT_RATE ?? 500);
  const machines = Number(process.env.BENCH_PINOT_MACHINES ?? 50);
  const probeCount = Number(process.env.BENCH_PINOT_PROBES ?? 100);
  const pollMs = Number(process.env.BENCH_PINOT_POLL_MS ?? 20);
  const startBegan = Date.now();
  const [nats, kafka, pinot] = await Promise.all([startNatsServer(), startKafkaBroker(), startPinotCluster()]);
  const pinotStartMs = Date.now() - startBegan;
  const settingsDir = await mkdtemp(join(tmpdir(), "edge-bench-pinot-"));
  const connection = await connect({ servers: nats.url });
  let load: SimulatedFleet | null = null;
  let probe: SimulatedFleet | null = null;
  try {
    await createPlatformStreams(connection);
    const bridgeEnv = {
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_KAFKA_PARTITIONS: "3",
      EDGE_BRIDGE_INSTANCE_ID: "bench-pinot",
      EDGE_BRIDGE_TENANT_ID: "tenant-1",
      // No heartbeats here: status changes come only from the probes' connection events.
      EDGE_BRIDGE_HEARTBEAT_SECONDS: "3600",
      MALLOC_ARENA_MAX: "2",
    };
    const env = { ...bridgeEnv, EDGE_BRIDGE_DATA_DIR: settingsDir, EDGE_BRIDGE_CONFIG_DIR: settingsDir };
    await ensureTopics(loadBridgeSettings({ env, flags: {}, privileged: false }).settings, silentLogger());
    const setup = await runBridgeCli(["pinot-setup", "--controller", pinot.controllerUrl], env, 240_000);
    if (setup.code !== 0) throw new Error(`pinot-setup failed:\n${setup.stdout}\n${setup.stderr}`);
    const bridge = await startBridgeProcess(bridgeEnv);

    // The baseline: the moment a read_committed reader sees each probe's record in Kafka.
    const seenInKafka = new Map<string, number>();
    const reader = new Consumer({
      clientId: "bench-pinot",
      groupId: `bench-pinot-${Date.now()}`,
      bootstrapBrokers: [kafka.bootstrap],
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      autocommit: false,
    });
    const stream = await reader.consume({
      topics: ["machine-telemetry", "devices-topic"],
      mode: MessagesStreamModes.LATEST,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
      autocommit: false,
      maxWaitTime: 20,
    });
    const watching = (async () => {
      for await (const message of stream) {
        const machineId = message.key?.toString() ?? "";
        if (!machineId.startsWith("probe-") || !message.value) continue;
        const value = JSON.parse(message.value.toString()) as {
          eventId?: string;
          status?: string;
          ingestionTime?: number;
        };
        const key =
          message.topic === "devices-topic"
            ? `${machineId}:${value.status}:${value.ingestionTime}`
            : String(value.eventId);
        if (!seenInKafka.has(key)) seenInKafka.set(key, Date.now());
      }
    })();

    load = await startSimulatedFleet({ connection, machines, prefix: "load" });
    probe = await startSimulatedFleet({ connection, machines: 1, prefix: "probe" });
    const probeMachine = probe.machineIds[0] as string;
    const connectionEvent = (type: "CONNECT" | "DISCONNECT"): ClientConnectionEvent => ({
      timestamp: new Date().toISOString(),
      client: { name: probeMachine },
      type,
      server: nats.url,
    });
    await probe.emitEvent(probeMachine, EventType.clientConnection, connectionEvent("CONNECT"));

    // The steady load, all along the probes.
    let loading = true;
    const loadBegan = Date.now();
    const loadLoop = (async () => {
      const perTick = Math.max(1, Math.round(rate / 10));
      while (loading) {
        const tick = Date.now();
        await (load as SimulatedFleet).emit(perTick);
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
    })();
    const warmed = await timeUntil(
      async () => (await queryCount(pinot.brokerUrl, "SELECT COUNT(*) FROM machine_telemetry")) > 0,
      Date.now(),
      200,
    );
    if (warmed === null)
      throw new Error(
        `no telemetry row queryable in Pinot within ${PROBE_TIMEOUT_MS} ms of the load starting\n${bridge.output().slice(-2_000)}`,
      );
    await timeUntil(
      async () =>
        (await querySql(pinot.brokerUrl, `SELECT status FROM devices WHERE machineId = '${probeMachine}'`))
          .rows[0]?.[0] === "ONLINE",
      Date.now(),
      200,
    );

    const telemetryProbes: ProbeTimes[] = [];
    const statusProbes: ProbeTimes[] = [];
    let online = true;
    for (let index = 0; index < probeCount; index++) {
      // A telemetry sample: queryable once its event id is a row.
      const sentAt = Date.now();
      const nextProbeAt = sentAt + PROBE_SPACING_MS;
      await probe.emitEvent(probeMachine, EventType.telemetry, telemetrySample(probeMachine, index));
      const eventId = probe.emitted[probe.emitted.length - 1]?.eventId as string;
      const pinotMs = await timeUntil(
        async () =>
          (await queryCount(pinot.brokerUrl, `SELECT COUNT(*) FROM machine_telemetry WHERE eventId = '${eventId}'`)) ===
          1,
        sentAt,
        pollMs,
      );
      const seen = seenInKafka.get(eventId);
      telemetryProbes.push({ pinotMs, kafkaMs: seen === undefined ? null : seen - sentAt });

      // A status change: the machine's devices row flips.
      online = !online;
      const expected = online ? "ONLINE" : "OFFLINE";
      const changedAt = Date.now();
      await probe.emitEvent(
        probeMachine,
        EventType.clientConnection,
        connectionEvent(online ? "CONNECT" : "DISCONNECT"),
      );
      const statusMs = await timeUntil(
        async () =>
          (await querySql(pinot.brokerUrl, `SELECT status FROM devices WHERE machineId = '${probeMachine}'`))
            .rows[0]?.[0] === expected,
        changedAt,
        pollMs,
      );
      const rowSeen = [...seenInKafka]
        .filter(([key, at]) => key.startsWith(`${probeMachine}:${expected}:`) && at >= changedAt)
        .map(([, at]) => at);
      statusProbes.push({ pinotMs: statusMs, kafkaMs: rowSeen.length > 0 ? Math.min(...rowSeen) - changedAt : null });
      await sleep(Math.max(0, nextProbeAt - Date.now()));
    }
    loading = false;
    await loadLoop;
    const loadEmitted = load.emitted.length;
    const loadSeconds = Math.round((Date.now() - loadBegan) / 1_000);
    await stream.close();
    await watching.catch(() => undefined);
    await reader.close();
    await bridge.stop("SIGTERM");
    await bridge.dispose();
    return {
      loadEventsPerSecond: rate,
      loadMachines: machines,
      loadEventsEmitted: loadEmitted,
      loadSeconds,
      pollMs,
      clusterStartMs: pinotStartMs,
      telemetrySample: summary(telemetryProbes),
      statusChange: summary(statusProbes),
    };
  } finally {
    await load?.stop();
    await probe?.stop();
    await connection.close().catch(() => undefined);
    await pinot.dispose();
    await kafka.dispose();
    await nats.dispose();
    await rm(settingsDir, { recursive: true, force: true });
  }
}
