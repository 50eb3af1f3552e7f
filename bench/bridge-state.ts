import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { DedupeWindows, outboxLifeKey, windowStateKey } from "../src/bridge/dedupe/dedupe-windows.ts";
import { newDeviceState } from "../src/bridge/devices/device-state.ts";
import { DeviceStore } from "../src/bridge/devices/device-store.ts";
import { DevicesProcessor } from "../src/bridge/devices/devices-processor.ts";
import { presenceStreamNames } from "../src/bridge/devices/presence.ts";
import {
  KafkaAdmin,
  type KafkaClientOptions,
  readCommittedPartition,
  TransactionalProducer,
} from "../src/bridge/kafka/client/index.ts";
import { shardStateTopic, shardStateTopicSpec } from "../src/bridge/kafka/topics.ts";
import type { OutputRecord } from "../src/bridge/records/source-message.ts";
import { EventStreamProcessor } from "../src/bridge/shards/event-stream-processor.ts";
import type { CheckpointValue } from "../src/bridge/state/checkpoint.ts";
import { KafkaShardStateStore, stateRecords } from "../src/bridge/state/shard-state-store.ts";
import { DEFAULT_TOPICS } from "../src/contracts/index.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/runtime/logger.ts";
import { startKafkaBroker } from "../test/helpers/kafka-broker.ts";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { quantileOfSorted } from "./quantile.ts";

/**
 * The bridge's state at fleet scale, the state layout of this version against the one before it
 * (one shared single-partition topic, a 1024-bit ring per machine), measured in the same run on
 * the same broker:
 *
 * - Checkpoint bytes per event: BENCH_STATE_EVENTS (300,000) telemetry events of
 *   BENCH_STATE_MACHINES (100,000) machines, round robin (each 1,000-event transaction touches
 *   1,000 machines: the worst case for state, and a large fleet's normal one), plus one
 *   connection event per machine on a second shard; each layout's state records are written to
 *   its topics as the shards write them (one transaction per batch) and the partitions' bytes on
 *   disk divided by the events.
 * - Takeover with 100,000 machines' state: fencing the shard's producer, reading its state back and
 *   rebuilding its windows (median of BENCH_STATE_TAKEOVERS, 3), for the TELEMETRY shard in each
 *   layout; in the one before, the shard reads every shard's state.
 * - The devices shard with 100,000 devices in its bucket: its takeover now (lazy) and its
 *   background pass, against loading every device first as before (keys, then one get per key).
 */
export const name = "bridge-state";

const BATCH = 1_000;
const TELEMETRY = "TELEMETRY";
const CONNECTIONS = "CLIENT_CONNECTIONS";
const LEGACY_RING_BYTES = 128;
const cpuMs = (usage: NodeJS.CpuUsage): number => (usage.user + usage.system) / 1000;
const median = (values: readonly number[]): number =>
  quantileOfSorted(
    [...values].sort((a, b) => a - b),
    0.5,
  ) ?? Number.NaN;

/** The window format before runs: `{high, seen}` with `seen` the base64 of a 1024-bit ring. */
class LegacyRing {
  high = 0;
  readonly bits = new Uint8Array(LEGACY_RING_BYTES);
  record(sequence: number): void {
    for (let cleared = this.high + 1; cleared <= sequence && cleared - this.high <= 1024; cleared++) {
      const bit = cleared % 1024;
      this.bits[bit >> 3] = (this.bits[bit >> 3] as number) & ~(1 << (bit & 7));
    }
    this.high = Math.max(this.high, sequence);
    const bit = sequence % 1024;
    this.bits[bit >> 3] = (this.bits[bit >> 3] as number) | (1 << (bit & 7));
  }
  snapshot(): { high: number; seen: string } {
    return { high: this.high, seen: Buffer.from(this.bits).toString("base64") };
  }
}

function checkpointOf(shard: string, sequence: number, transaction: number): CheckpointValue {
  return {
    shard,
    positions: { [shard]: { sequence, streamCreated: "2026-12-01T00:00:00.000000000Z" } },
    transaction,
    committedAt: new Date().toISOString(),
  };
}

/** The transactions one shard writes for `events` (machine index per event), in each layout. */
function* shardTransactions(
  shard: string,
  events: number,
  machineOf: (event: number) => number,
  layouts: { newTopic: string; legacyTopic: string },
): Generator<{ newRecords: OutputRecord[]; legacyRecords: OutputRecord[] }> {
  const windows = new DedupeWindows();
  const rings = new Map<number, LegacyRing>();
  const sequences = new Map<number, number>();
  let transaction = 0;
  for (let start = 0; start < events; start += BATCH) {
    const draft = windows.draft();
    const touched = new Set<number>();
    const end = Math.min(events, start + BATCH);
    for (let event = start; event < end; event++) {
      const machine = machineOf(event);
      const sequence = (sequences.get(machine) ?? 0) + 1;
      sequences.set(machine, sequence);
      draft.judge(outboxLifeKey(machineName(machine), `outbox-${machine}`), sequence, Date.now());
      let ring = rings.get(machine);
      if (!ring) {
        ring = new LegacyRing();
        rings.set(machine, ring);
      }
      ring.record(sequence);
      touched.add(machine);
    }
    transaction++;
    const changes = draft.changes().map((change) => ({ key: windowStateKey(change.key), value: change.value }));
    windows.commit(draft);
    const newRecords = stateRecords(layouts.newTopic, checkpointOf(shard, end, transaction), changes);
    const legacyRecords: OutputRecord[] = [...touched].map((machine) => ({
      topic: layouts.legacyTopic,
      key: Buffer.from(`dedupe/${shard}/${machineName(machine)}`),
      value: Buffer.from(JSON.stringify((rings.get(machine) as LegacyRing).snapshot())),
      headers: new Map(),
    }));
    legacyRecords.push({
      topic: layouts.legacyTopic,
      key: Buffer.from(`checkpoint/${shard}`),
      value: Buffer.from(JSON.stringify(checkpointOf(shard, end, transaction))),
      headers: new Map(),
    });
    yield { newRecords, legacyRecords };
  }
}

const machineName = (index: number): string =>
  `${index.toString(16).padStart(8, "0")}-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;

async function partitionBytes(logDir: string, topic: string): Promise<number> {
  const dir = join(logDir, `${topic}-0`);
  let total = 0;
  for (const file of await readdir(dir)) if (file.endsWith(".log")) total += (await stat(join(dir, file))).size;
  return total;
}

/** The takeover before this version: every record of the shared topic read, the shard's own parsed. */
async function legacyTakeover(options: KafkaClientOptions, topic: string, shard: string): Promise<number> {
  const own = `dedupe/${shard}/`;
  const windows = new Map<string, Uint8Array>();
  let checkpoint: unknown = null;
  await readCommittedPartition(options, topic, 0, 0n, (record) => {
    const key = record.key?.toString("utf8");
    if (key === `checkpoint/${shard}`) checkpoint = JSON.parse(String(record.value));
    else if (key?.startsWith(own) && record.value) {
      const { seen } = JSON.parse(record.value.toString("utf8")) as { seen: string };
      windows.set(key, new Uint8Array(Buffer.from(seen, "base64")));
    }
  });
  if (checkpoint === null) throw new Error("no legacy checkpoint read");
  return windows.size;
}

/** Its figures, typed: bench/bridge.ts reports the takeover beside its own goals from here. */
export async function run() {
  const machines = Number(process.env.BENCH_STATE_MACHINES ?? 100_000);
  const telemetryEvents = Number(process.env.BENCH_STATE_EVENTS ?? 300_000);
  const takeovers = Number(process.env.BENCH_STATE_TAKEOVERS ?? 3);
  const [kafka, nats] = await Promise.all([
    startKafkaBroker({ properties: { "log.retention.bytes": "-1" } }),
    startNatsServer(),
  ]);
  const options: KafkaClientOptions = { clientId: "bench-state", bootstrapBrokers: [kafka.bootstrap] };
  const connection = await connect({ servers: nats.url });
  const legacyTopic = DEFAULT_TOPICS.checkpoint;
  const newTopic = (shard: string): string => shardStateTopic(DEFAULT_TOPICS.checkpoint, shard);
  try {
    const admin = new KafkaAdmin(options);
    await admin.createTopic({
      name: legacyTopic,
      partitions: 1,
      replicas: 1,
      configs: { "cleanup.policy": "compact", "segment.ms": "3600000", "min.cleanable.dirty.ratio": "0.1" },
    });
    for (const shard of [TELEMETRY, CONNECTIONS]) await admin.createTopic(shardStateTopicSpec(newTopic(shard), 1));
    await admin.close();

    // Both layouts' state, written as the shards write it: one transaction per batch.
    const writeBegan = performance.now();
    const shards = [
      { shard: TELEMETRY, events: telemetryEvents, machineOf: (event: number) => event % machines },
      { shard: CONNECTIONS, events: machines, machineOf: (event: number) => event },
    ];
    let payload = { new: 0, legacy: 0 };
    for (const { shard, events, machineOf } of shards) {
      const writers = {
        new: new TransactionalProducer(options, `bench-new-${shard}`, () => 1_000_000),
        legacy: new TransactionalProducer(options, `bench-legacy-${shard}`, () => 1_000_000),
      };
      await Promise.all([writers.new.open(), writers.legacy.open()]);
      for (const { newRecords, legacyRecords } of shardTransactions(shard, events, machineOf, {
        newTopic: newTopic(shard),
        legacyTopic,
      })) {
        const bytes = (records: readonly OutputRecord[]) =>
          records.reduce((total, record) => total + (record.key?.length ?? 0) + (record.value?.length ?? 0), 0);
        payload = { new: payload.new + bytes(newRecords), legacy: payload.legacy + bytes(legacyRecords) };
        await Promise.all([writers.new.write(newRecords, Date.now()), writers.legacy.write(legacyRecords, Date.now())]);
      }
      await Promise.all([writers.new.close(), writers.legacy.close()]);
    }
    const writeMs = performance.now() - writeBegan;
    const events = telemetryEvents + machines;
    const diskBytes = {
      new:
        (await partitionBytes(kafka.logDir, newTopic(TELEMETRY))) +
        (await partitionBytes(kafka.logDir, newTopic(CONNECTIONS))),
      legacy: await partitionBytes(kafka.logDir, legacyTopic),
    };
    const telemetryTopicBytes = await partitionBytes(kafka.logDir, newTopic(TELEMETRY));

    // Takeovers of the TELEMETRY shard: fence, read the state back, rebuild the windows.
    const fence = async (transactionalId: string): Promise<void> => {
      const producer = new TransactionalProducer(options, transactionalId, () => 1_000_000);
      await producer.open();
      await producer.close();
    };
    const newTakeoverMs: number[] = [];
    const newTakeoverCpuMs: number[] = [];
    let windowsLoaded = 0;
    let stateBytesRead = 0;
    for (let round = 0; round < takeovers; round++) {
      const began = performance.now();
      const cpuBefore = process.cpuUsage();
      await fence(`bench-new-${TELEMETRY}`);
      const store = new KafkaShardStateStore({
        shard: TELEMETRY,
        checkpointTopic: DEFAULT_TOPICS.checkpoint,
        replicas: 1,
        clientOptions: () => options,
      });
      const loaded = await store.load();
      const processor = new EventStreamProcessor({
        stream: TELEMETRY,
        router: { topics: DEFAULT_TOPICS, maxRecordBytes: () => 1_000_000 },
        logger: silentLogger(),
      });
      await processor.takeover({ checkpoint: loaded.checkpoint, states: loaded.states, connection });
      newTakeoverMs.push(performance.now() - began);
      newTakeoverCpuMs.push(cpuMs(process.cpuUsage(cpuBefore)));
      windowsLoaded = processor.stats().windowsTracked ?? 0;
      stateBytesRead = loaded.bytesRead;
    }
    const legacyTakeoverMs: number[] = [];
    const legacyTakeoverCpuMs: number[] = [];
    let legacyWindowsLoaded = 0;
    for (let round = 0; round < takeovers; round++) {
      const began = performance.now();
      const cpuBefore = process.cpuUsage();
      await fence(`bench-legacy-${TELEMETRY}`);
      legacyWindowsLoaded = await legacyTakeover(options, legacyTopic, TELEMETRY);
      legacyTakeoverMs.push(performance.now() - began);
      legacyTakeoverCpuMs.push(cpuMs(process.cpuUsage(cpuBefore)));
    }

    // The devices shard with the fleet in its bucket.
    const bucket = "bench-devices";
    const kv = await new Kvm(connection).create(bucket, { history: 1 });
    for (let start = 0; start < machines; start += 1_000) {
      const puts: Array<Promise<number>> = [];
      for (let index = start; index < Math.min(machines, start + 1_000); index++) {
        const machineId = machineName(index);
        puts.push(
          kv.put(
            machineId,
            JSON.stringify({
              ...newDeviceState(machineId),
              status: index % 3 === 0 ? "ONLINE" : "OFFLINE",
              statusAtMs: 1,
            }),
          ),
        );
      }
      await Promise.all(puts);
    }
    const devices = new DevicesProcessor({
      store: () => DeviceStore.open(connection, bucket, silentLogger()),
      devicesTopic: DEFAULT_TOPICS.devices,
      rowContext: { tenantId: null, organizationId: null, organizationTag: "organization" },
      connectionsStream: CONNECTIONS,
      inventoryStream: "INVENTORY",
      presence: presenceStreamNames("bench"),
      systemConnection: () => null,
      defaultHeartbeatSeconds: 60,
      missedHeartbeats: 3,
      identity: { trustConnectionNames: false },
      clock: systemClock,
      logger: silentLogger(),
    });
    const devicesBegan = performance.now();
    await devices.takeover({ checkpoint: null, states: new Map(), connection });
    const devicesTakeoverMs = performance.now() - devicesBegan;
    while (devices.stats().devicesRead !== 1) await new Promise((resolve) => setTimeout(resolve, 20));
    const devicesPassMs = performance.now() - devicesBegan;
    const devicesKnown = devices.stats().devicesKnown;
    await devices.release();
    // Before: keys(), then one get per key, 256 at a time, before the shard ran at all.
    const legacyDevicesBegan = performance.now();
    const keys: string[] = [];
    for await (const key of await kv.keys()) keys.push(key);
    for (let start = 0; start < keys.length; start += 256)
      await Promise.all(keys.slice(start, start + 256).map((key) => kv.get(key)));
    const legacyDevicesTakeoverMs = performance.now() - legacyDevicesBegan;

    const takeoverMs = Math.round(median(newTakeoverMs));
    return {
      machines,
      events,
      telemetryEvents,
      batchEvents: BATCH,
      writeSeconds: Number((writeMs / 1000).toFixed(1)),
      checkpointPayloadBytesPerEvent: {
        perShardTopics: Number((payload.new / events).toFixed(1)),
        sharedTopicBefore: Number((payload.legacy / events).toFixed(1)),
      },
      checkpointDiskBytesPerEvent: {
        perShardTopics: Number((diskBytes.new / events).toFixed(1)),
        sharedTopicBefore: Number((diskBytes.legacy / events).toFixed(1)),
        ratio: Number((diskBytes.new / diskBytes.legacy).toFixed(3)),
      },
      takeover: {
        shard: TELEMETRY,
        windowsLoaded,
        stateBytesRead,
        telemetryStateTopicBytesOnDisk: telemetryTopicBytes,
        medianMs: takeoverMs,
        allMs: newTakeoverMs.map(Math.round),
        bridgeCpuMedianMs: Math.round(median(newTakeoverCpuMs)),
        goalMs: 5_000,
        meetsGoal: takeoverMs < 5_000,
        sharedTopicBefore: {
          windowsLoaded: legacyWindowsLoaded,
          topicBytesOnDisk: diskBytes.legacy,
          medianMs: Math.round(median(legacyTakeoverMs)),
          allMs: legacyTakeoverMs.map(Math.round),
          bridgeCpuMedianMs: Math.round(median(legacyTakeoverCpuMs)),
        },
        ratioToBefore: Number((median(newTakeoverMs) / median(legacyTakeoverMs)).toFixed(3)),
      },
      devicesShard: {
        devices: devicesKnown,
        takeoverMs: Math.round(devicesTakeoverMs),
        presencePassMs: Math.round(devicesPassMs),
        loadEveryDeviceFirstBeforeMs: Math.round(legacyDevicesTakeoverMs),
      },
    };
  } finally {
    await connection.close().catch(() => undefined);
    await kafka.dispose();
    await nats.dispose();
  }
}
