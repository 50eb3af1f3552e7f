import { Admin, Producer, stringSerializers } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCommittedPartition, TransactionalProducer } from "../../../src/bridge/kafka/client/index.ts";
import { shardStateTopic } from "../../../src/bridge/kafka/topics.ts";
import type { OutputRecord } from "../../../src/bridge/records/source-message.ts";
import {
  CheckpointLostError,
  CheckpointUnreadableError,
  type CheckpointValue,
} from "../../../src/bridge/state/checkpoint.ts";
import {
  InheritedStateLostError,
  KafkaShardStateStore,
  PredecessorNotDrainedError,
} from "../../../src/bridge/state/shard-state-store.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { quietFor, waitFor } from "../../helpers/wait-for.ts";

const checkpoint = (shard: string, sequence: number, transaction: number): CheckpointValue => ({
  shard,
  positions: { [shard]: { sequence, streamCreated: "2026-11-30T00:00:00Z" } },
  transaction,
  committedAt: "2026-12-01T10:00:00.000Z",
});

const record = (topic: string, key: string, value: unknown): OutputRecord => ({
  topic,
  key: Buffer.from(key),
  value: value === null ? null : Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
  headers: new Map(),
});

/** A legacy window (the bit ring before per-shard topics) holding `sequences`, newest `high`. */
function legacyRing(high: number, sequences: readonly number[]): { high: number; seen: string } {
  const bits = Buffer.alloc(128);
  for (const sequence of sequences) {
    const bit = sequence % 1024;
    bits.writeUInt8(bits.readUInt8(bit >> 3) | (1 << (bit & 7)), bit >> 3);
  }
  return { high, seen: bits.toString("base64") };
}

describe("a shard's state read back at takeover (its own topic; the legacy shared topic once)", () => {
  let kafka: KafkaBrokerHandle;
  let run = 0;
  const options = () => ({ clientId: "shard-state-test", bootstrapBrokers: [kafka.bootstrap] });
  /** A checkpoint topic prefix of its own for each test. */
  const prefix = () => `state-test-${++run}`;
  const storeOf = (checkpointTopic: string, shard: string) =>
    new KafkaShardStateStore({ shard, checkpointTopic, replicas: 1, clientOptions: options });
  const commit = async (transactionalId: string, records: readonly OutputRecord[]): Promise<void> => {
    const producer = new TransactionalProducer(options(), transactionalId, () => 1_000_000);
    try {
      await producer.open();
      await producer.write(records, Date.now());
    } finally {
      await producer.close();
    }
  };

  beforeAll(async () => {
    kafka = await startKafkaBroker();
  }, 120_000);

  afterAll(async () => {
    await kafka?.dispose();
  });

  it("is the newest committed checkpoint and the newest value of each state key; tombstones delete, unreadable records are counted and skipped", async () => {
    const checkpointTopic = prefix();
    const store = storeOf(checkpointTopic, "TELEMETRY");
    // The first load makes the shard's own topic.
    expect(await store.load()).toMatchObject({ checkpoint: null, migratedFrom: null, unreadable: 0 });
    await commit(
      "t-1",
      store.records(checkpoint("TELEMETRY", 10, 1), [
        { key: "dedupe/m-1/a", value: { high: 3, runs: [[1, 3]], lastAtMs: 1 } },
        { key: "dedupe/m-2/b", value: { high: 9, runs: [[9, 9]], lastAtMs: 1 } },
      ]),
    );
    await commit("t-1", [
      ...store.records(checkpoint("TELEMETRY", 20, 2), [
        { key: "dedupe/m-1/a", value: { high: 4, runs: [[1, 4]], lastAtMs: 2 } },
        { key: "dedupe/m-2/b", value: null },
      ]),
      record(store.topic, "dedupe/m-3/c", "{not json"),
    ]);
    const loaded = await store.load();
    expect(store.topic).toBe(shardStateTopic(checkpointTopic, "TELEMETRY"));
    expect(loaded.checkpoint).toMatchObject({ transaction: 2, positions: { TELEMETRY: { sequence: 20 } } });
    expect([...loaded.states]).toEqual([["dedupe/m-1/a", { high: 4, runs: [[1, 4]], lastAtMs: 2 }]]);
    expect(loaded.unreadable).toBe(1);
    expect(loaded.bytesRead).toBeGreaterThan(0);
  }, 120_000);

  it("refuses a checkpoint it cannot read, or one of another shard, instead of bridging the stream again", async () => {
    const store = storeOf(prefix(), "EVENTS");
    await store.load();
    await commit("t-2", [record(store.topic, "checkpoint", { shard: "EVENTS", positions: "nowhere" })]);
    await expect(store.load()).rejects.toBeInstanceOf(CheckpointUnreadableError);
    await commit("t-2", [record(store.topic, "checkpoint", checkpoint("OTHER", 1, 1))]);
    await expect(store.load()).rejects.toMatchObject({ code: "EDGE_BRIDGE_CHECKPOINT_UNREADABLE" });
  }, 120_000);

  it("moves a shard's state out of the legacy shared topic, read past another shard's open transaction, and then refuses to start over if its own topic loses it", async () => {
    const legacyTopic = prefix();
    const admin = new Admin(options());
    await admin.createTopics({
      topics: [legacyTopic],
      partitions: 1,
      replicas: 1,
      configs: [{ name: "cleanup.policy", value: "compact" }],
    });
    await admin.close();
    // The old layout: every shard's checkpoint and windows in one topic.
    await commit("legacy-a", [
      record(legacyTopic, "dedupe/TELEMETRY/m-1", legacyRing(5, [1, 2, 3, 5])),
      record(legacyTopic, "checkpoint/TELEMETRY", checkpoint("TELEMETRY", 100, 1)),
    ]);
    // Another shard (an old-version owner, alive) keeps a transaction open on the same partition...
    const other = new Producer({
      ...options(),
      transactionalId: "legacy-b",
      idempotent: true,
      producerId: -1n,
      producerEpoch: -1,
      acks: -1,
      serializers: stringSerializers,
    });
    const open = await other.beginTransaction();
    await open.send({
      messages: [{ topic: legacyTopic, key: "checkpoint/EVENTS", value: JSON.stringify(checkpoint("EVENTS", 7, 1)) }],
    });
    // ...while ours commits its newest checkpoint behind it.
    await commit("legacy-a", [record(legacyTopic, "checkpoint/TELEMETRY", checkpoint("TELEMETRY", 200, 2))]);
    const store = storeOf(legacyTopic, "TELEMETRY");
    let loadEnded = false;
    const loading = store.load().finally(() => (loadEnded = true));
    // Nothing shows a reader waiting at the open transaction's first record but that it has not returned.
    await quietFor(1_500, "the load stays behind the other shard's open transaction");
    expect(loadEnded).toBe(false);
    await open.commit();
    const loaded = await loading;
    await other.close();
    expect(loaded.migratedFrom).toBe(legacyTopic);
    expect(loaded.checkpoint).toMatchObject({ transaction: 2, positions: { TELEMETRY: { sequence: 200 } } });
    // The ring became runs, under the key of an outbox life without an outbox id.
    expect([...loaded.states]).toEqual([
      [
        "dedupe/m-1/",
        {
          high: 5,
          runs: [
            [1, 3],
            [5, 5],
          ],
          lastAtMs: Date.parse("2026-12-01T10:00:00.000Z"),
        },
      ],
    ]);

    await commit("legacy-a", store.migrationRecords(loaded, checkpoint("TELEMETRY", 200, 3)));
    const again = await store.load();
    expect(again.migratedFrom).toBeNull();
    expect(again.checkpoint).toMatchObject({ transaction: 3 });
    expect([...again.states.keys()]).toEqual(["dedupe/m-1/"]);
    // The legacy topic now says where the state went: an old-version bridge cannot take it for a checkpoint.
    const legacyValues: unknown[] = [];
    await readCommittedPartition(options(), legacyTopic, 0, 0n, (read) => {
      if (read.key?.toString() === "checkpoint/TELEMETRY") legacyValues.push(JSON.parse(String(read.value)));
    });
    expect(legacyValues.at(-1)).toEqual({ movedTo: store.topic, shard: "TELEMETRY" });
    // A shard the shared topic knows nothing of moves too (an empty state), so it is read there once only.
    const quiet = await storeOf(legacyTopic, "INVENTORY").load();
    expect(quiet).toMatchObject({ checkpoint: null, migratedFrom: legacyTopic });
    expect(quiet.states.size).toBe(0);

    // The shard's own topic loses its state (deleted by hand): the shard does not start from the stream's beginning.
    const cleaner = new Admin(options());
    await cleaner.deleteTopics({ topics: [store.topic] });
    await waitFor("the topic gone", async () => !(await cleaner.listTopics()).includes(store.topic), 30_000);
    await cleaner.close();
    await expect(store.load()).rejects.toBeInstanceOf(CheckpointLostError);
  }, 120_000);

  it("a partition waits until its predecessor committed what was stored unpartitioned, then starts from its state, once", async () => {
    const checkpointTopic = prefix();
    const created = "2026-11-30T00:00:00Z";
    const predecessor = storeOf(checkpointTopic, "TELEMETRY");
    await predecessor.load();
    await commit(
      "p-telemetry",
      predecessor.records(checkpoint("TELEMETRY", 5, 1), [
        { key: "dedupe/m-1/a", value: { high: 3, runs: [[1, 3]], lastAtMs: 1 } },
      ]),
    );
    // The stream still holds an unpartitioned message at 8, past the predecessor's 5.
    let lastSequence = 8;
    const partition = new KafkaShardStateStore({
      shard: "TELEMETRY-p1-of-4",
      checkpointTopic,
      replicas: 1,
      clientOptions: options,
      predecessor: {
        shard: "TELEMETRY",
        stream: "TELEMETRY",
        unpartitionedEnd: async () => ({ lastSequence, streamCreated: created }),
      },
    });
    await expect(partition.load()).rejects.toBeInstanceOf(PredecessorNotDrainedError);
    await commit("p-telemetry", predecessor.records(checkpoint("TELEMETRY", 8, 2), []));
    const loaded = await partition.load();
    expect(loaded).toMatchObject({
      checkpoint: { shard: "TELEMETRY", positions: { TELEMETRY: { sequence: 8 } } },
      migratedFrom: predecessor.topic,
    });
    expect([...loaded.states.keys()]).toEqual(["dedupe/m-1/a"]);

    // Its first transaction writes the state into its own topic, and says so in the predecessor's.
    const first = partition.migrationRecords(loaded, {
      ...checkpoint("TELEMETRY-p1-of-4", 8, 3),
      positions: { TELEMETRY: { sequence: 8, streamCreated: created } },
    });
    expect(first.map((entry) => `${entry.topic} ${entry.key?.toString()}`)).toEqual([
      `${partition.topic} dedupe/m-1/a`,
      `${partition.topic} checkpoint`,
      `${predecessor.topic} inherited-by/TELEMETRY-p1-of-4`,
    ]);
    await commit("p-partition", first);
    lastSequence = 0;
    expect(await partition.load()).toMatchObject({
      checkpoint: { shard: "TELEMETRY-p1-of-4" },
      migratedFrom: null,
    });
    // The predecessor reads the marker as a state key no kind of its own owns.
    expect((await predecessor.load()).states.has("inherited-by/TELEMETRY-p1-of-4")).toBe(true);

    // Its own topic lost its state: it does not take the predecessor's again.
    await commit("p-partition", [record(partition.topic, "checkpoint", null)]);
    await expect(partition.load()).rejects.toBeInstanceOf(InheritedStateLostError);
  }, 120_000);
});
