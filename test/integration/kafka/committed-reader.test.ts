import { compatibilityPartitioner, ProduceAcks, Producer } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KafkaAdmin } from "../../../src/bridge/kafka/client/index.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { readTopicWithKafkaConsumer } from "../../helpers/kafka-oracle-reader.ts";
import { type ReadRecord, readTopic } from "../../helpers/kafka-topic-reader.ts";

/**
 * The bridge's committed reader (src/bridge/kafka/client/committed-reader.ts: it drops aborted
 * transactions itself, which the client library does not) against Kafka's own Java consumer
 * in read_committed mode, on a topic where two producers' committed and aborted transactions
 * interleave over three partitions: they must read the very same records.
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
      new Producer({
        clientId: transactionalId,
        bootstrapBrokers: [kafka.bootstrap],
        transactionalId,
        producerId: -1n,
        producerEpoch: -1,
        idempotent: true,
        retries: 0,
        acks: ProduceAcks.ALL,
        partitioner: compatibilityPartitioner,
      });
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
});
