import { Admin, Producer, stringSerializers } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CheckpointValue,
  checkpointKey,
  checkpointRecord,
  loadShardState,
} from "../../../src/bridge/kafka/checkpoint.ts";
import { TransactionalWriter } from "../../../src/bridge/kafka/transactional-writer.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";

const TOPIC = "edge-bridge-checkpoints";

describe("a shard's checkpoint read back on takeover", () => {
  let kafka: KafkaBrokerHandle;
  const options = () => ({ clientId: "checkpoint-read-test", bootstrapBrokers: [kafka.bootstrap] });

  beforeAll(async () => {
    kafka = await startKafkaBroker();
    const admin = new Admin(options());
    await admin.createTopics({
      topics: [TOPIC],
      partitions: 1,
      replicas: 1,
      configs: [{ name: "cleanup.policy", value: "compact" }],
    });
    await admin.close();
  }, 120_000);

  afterAll(async () => {
    await kafka?.dispose();
  });

  const checkpoint = (shard: string, sequence: number, transaction: number): CheckpointValue => ({
    shard,
    positions: { TELEMETRY: { sequence, streamCreated: "2026-11-30T00:00:00Z" } },
    transaction,
    committedAt: new Date().toISOString(),
  });

  it("is the newest committed one, even when another shard's transaction opened before it is still open", async () => {
    const shardA = new TransactionalWriter(options(), "test-shard-a", () => 1_000_000);
    await shardA.open();
    await shardA.write([checkpointRecord(TOPIC, checkpoint("a", 100, 1))]);

    // Shard b (another owner, alive) opens a transaction on the same one-partition topic and keeps it open.
    const shardB = new Producer({
      ...options(),
      transactionalId: "test-shard-b",
      idempotent: true,
      producerId: -1n,
      producerEpoch: -1,
      acks: -1,
      serializers: stringSerializers,
    });
    const open = await shardB.beginTransaction();
    await open.send({
      messages: [{ topic: TOPIC, key: checkpointKey("b"), value: JSON.stringify(checkpoint("b", 7, 1)) }],
    });

    // Shard a commits again after it: its newest checkpoint sits behind b's open transaction.
    await shardA.write([checkpointRecord(TOPIC, checkpoint("a", 200, 2))]);
    await shardA.close();

    // b commits a moment later, as a live owner does; the read must wait for it, not stop before it.
    const committed = new Promise<void>((resolve, reject) =>
      setTimeout(() => void open.commit().then(resolve, reject), 1_500),
    );
    const loaded = await loadShardState(options(), TOPIC, "a");
    await committed;
    await shardB.close();
    expect(loaded.checkpoint).toMatchObject({
      shard: "a",
      transaction: 2,
      positions: { TELEMETRY: { sequence: 200 } },
    });
  }, 120_000);
});
