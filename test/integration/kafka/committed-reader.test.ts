import type { Producer } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KafkaAdmin } from "../../../src/bridge/kafka/client/index.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { readTopicWithKafkaConsumer } from "../../helpers/kafka-oracle-reader.ts";
import { rawTransactionalProducer } from "../../helpers/kafka-raw-producer.ts";
import { type ReadRecord, readTopic } from "../../helpers/kafka-topic-reader.ts";

/**
 * The bridge's committed reader (src/bridge/kafka/client/committed-reader.ts: it drops aborted
 * transactions itself, from the broker's raw answer) against Kafka's own Java consumer
 * in read_committed mode: they must read the very same records, where two producers' committed and
 * aborted transactions interleave over three partitions, and where one transactional id passes
 * from owner to owner as a shard's state topic does under kill -9.
 */
describe("the committed reader reads what Kafka's own read_committed consumer reads", () => {
  let kafka: KafkaBrokerHandle;

  beforeAll(async () => {
    kafka = await startKafkaBroker();
  }, 120_000);

  afterAll(async () => {
    await kafka?.dispose();
  });

  it("interleaved committed and aborted transactions of two producers, on three partitions", async () => {
    const topic = "reader-oracle";
    const admin = new KafkaAdmin({ clientId: "oracle-admin", bootstrapBrokers: [kafka.bootstrap] });
    await admin.createTopic({ name: topic, partitions: 3, replicas: 1, configs: {} });
    await admin.close();
    const producer = (transactionalId: string): Producer =>
      rawTransactionalProducer({ clientId: transactionalId, bootstrapBrokers: [kafka.bootstrap] }, transactionalId);
    const producers = [producer("oracle-a"), producer("oracle-b")];
    try {
      for (let round = 0; round < 12; round++) {
        // Both open at once, so their batches interleave in the partitions; some rounds abort.
        const transactions = await Promise.all(producers.map((each) => each.beginTransaction()));
        await Promise.all(
          transactions.map((transaction, writer) =>
            transaction.send({
              messages: Array.from({ length: 5 }, (_, index) => ({
                topic,
                key: Buffer.from(`m-${(round + index) % 7}`),
                value: Buffer.from(JSON.stringify({ round, writer, index })),
                headers: new Map([[Buffer.from("X-Round"), Buffer.from(String(round))]]),
              })),
            }),
          ),
        );
        await Promise.all(
          transactions.map((transaction, writer) =>
            (round + writer) % 3 === 0 ? transaction.abort() : transaction.commit(),
          ),
        );
      }
    } finally {
      await Promise.all(producers.map((each) => each.close(true)));
    }
    const plain = (records: readonly ReadRecord[]) =>
      records.map((record) => ({
        partition: record.partition,
        offset: record.offset,
        key: record.keyText,
        value: record.value?.toString() ?? null,
        headers: record.headers.map(([name, value]) => `${name}=${value}`),
      }));
    const ours = plain(await readTopic(kafka.bootstrap, topic));
    const theirs = plain(await readTopicWithKafkaConsumer(kafka.bootstrap, topic));
    expect(ours).toEqual(theirs);
    // Some aborted, some committed: the comparison means something.
    const rounds = new Set(theirs.map((record) => (JSON.parse(record.value ?? "{}") as { round: number }).round));
    expect(rounds.size).toBe(12);
    expect(theirs.length).toBe(12 * 2 * 5 - 8 * 5);
  }, 180_000);

  // The state topic of a shard under kill -9: one transactional id, owner after owner. An owner
  // that dies with its transaction open has it aborted by the next one, and when the partition
  // was added to that transaction but got no record, its ABORT marker stands alone (the broker
  // lists no aborted transaction for it). The client library's own read_committed filter (2.12.1)
  // dropped everything of the producer from its first listed aborted transaction to its LAST
  // ABORT marker in the response: committed checkpoints in between vanished, a takeover resumed
  // from an older one, and events were bridged twice. Here a refused batch leaves the lone marker.
  it("one transactional id over two owners: committed transactions between an aborted one and a later ABORT marker that has no records are all read", async () => {
    const topic = "reader-oracle-owners";
    const admin = new KafkaAdmin({ clientId: "oracle-admin", bootstrapBrokers: [kafka.bootstrap] });
    await admin.createTopic({ name: topic, partitions: 1, replicas: 1, configs: { "max.message.bytes": "2000" } });
    await admin.close();
    const owner = (): Producer =>
      rawTransactionalProducer({ clientId: "oracle-owner", bootstrapBrokers: [kafka.bootstrap] }, "oracle-owners");
    const transact = async (producer: Producer, value: string | Buffer, outcome: "commit" | "abort") => {
      const transaction = await producer.beginTransaction();
      const sent = await transaction
        .send({ messages: [{ topic, key: Buffer.from("checkpoint"), value: Buffer.from(value) }] })
        .then(
          () => true,
          () => false,
        );
      await (outcome === "commit" && sent ? transaction.commit() : transaction.abort());
    };
    const first = owner();
    try {
      await transact(first, "c1", "commit");
      await transact(first, "a1", "abort");
      await transact(first, "c2", "commit");
      await transact(first, "c3", "commit");
      // Refused by the broker (over max.message.bytes) after the partition joined the transaction:
      // the abort writes a marker with no record before it.
      await transact(first, Buffer.alloc(5_000), "abort");
    } finally {
      await first.close(true);
    }
    const second = owner();
    try {
      await transact(second, "c4", "commit");
    } finally {
      await second.close(true);
    }
    const values = (records: readonly ReadRecord[]) => records.map((record) => record.value?.toString() ?? null);
    const theirs = values(await readTopicWithKafkaConsumer(kafka.bootstrap, topic));
    expect(theirs).toEqual(["c1", "c2", "c3", "c4"]);
    expect(values(await readTopic(kafka.bootstrap, topic))).toEqual(theirs);
  }, 180_000);
});
