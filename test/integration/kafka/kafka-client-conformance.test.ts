import { Admin, type Broker, Consumer, FetchIsolationLevels, IS_CONTROL, type Producer } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CommittedRecord,
  KafkaAdmin,
  readCommittedPartition,
  SpentProducerError,
  TransactionalProducer,
} from "../../../src/bridge/kafka/client/index.ts";
import { fetchCommittedRaw } from "../../../src/bridge/kafka/client/raw-fetch.ts";
import { classifyKafkaError, kafkaErrorIds } from "../../../src/bridge/kafka/kafka-errors.ts";
import type { OutputRecord } from "../../../src/bridge/records/source-message.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { rawTransactionalProducer } from "../../helpers/kafka-raw-producer.ts";

/**
 * What the bridge relies on @platformatic/kafka (and the broker) to do, pinned against a real
 * broker: each behaviour below is one that src/bridge/kafka/client/ works around or builds on, so
 * a new library version that changes it fails here, not in production.
 */
describe("the Kafka client library, as the bridge relies on it", () => {
  let kafka: KafkaBrokerHandle;
  const options = (clientId = "conformance") => ({ clientId, bootstrapBrokers: [kafka.bootstrap] });
  let topicNumber = 0;
  const newTopic = async (configs: Record<string, string> = {}): Promise<string> => {
    const name = `conformance-${++topicNumber}`;
    const admin = new KafkaAdmin(options());
    try {
      await admin.createTopic({ name, partitions: 1, replicas: 1, configs });
    } finally {
      await admin.close();
    }
    return name;
  };
  const record = (topic: string, value: Buffer | null, key = "k"): OutputRecord => ({
    topic,
    key: Buffer.from(key),
    value,
    headers: new Map(),
  });
  const readAll = async (topic: string): Promise<CommittedRecord[]> => {
    const records: CommittedRecord[] = [];
    await readCommittedPartition(options("conformance-reader"), topic, 0, 0n, (read) => records.push(read));
    return records;
  };
  const rawProducer = (transactionalId: string): Producer => rawTransactionalProducer(options(), transactionalId);

  beforeAll(async () => {
    kafka = await startKafkaBroker();
  }, 120_000);

  afterAll(async () => {
    await kafka?.dispose();
  });

  it("after a batch the broker refused, a new transaction cannot begin before the abort ends, and even then the partition is refused as OUT_OF_ORDER_SEQUENCE_NUMBER: a failed producer is spent", async () => {
    const topic = await newTopic({ "max.message.bytes": "2000" });
    const producer = rawProducer("conformance-too-large");
    try {
      const first = await producer.beginTransaction();
      await first.send({ messages: [{ topic, key: Buffer.from("k"), value: Buffer.from("fits") }] });
      await first.commit();
      const refused = await producer.beginTransaction();
      const failure = await refused
        .send({ messages: [{ topic, key: Buffer.from("k"), value: Buffer.alloc(5_000) }] })
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(kafkaErrorIds(failure).has("MESSAGE_TOO_LARGE")).toBe(true);
      expect(classifyKafkaError(failure)).toBe("too-large");
      const aborting = refused.abort();
      await expect(producer.beginTransaction()).rejects.toThrow(/already an active transaction/);
      await aborting;
      const next = await producer.beginTransaction();
      const after = await next
        .send({ messages: [{ topic, key: Buffer.from("k"), value: Buffer.from("fits too") }] })
        .then(
          () => null,
          (error: unknown) => error,
        );
      expect(kafkaErrorIds(after).has("OUT_OF_ORDER_SEQUENCE_NUMBER")).toBe(true);
      await next.abort().catch(() => undefined);
    } finally {
      await producer.close(true);
    }
  }, 60_000);

  it("our producer: a refused transaction is aborted before the failure is reported and leaves it spent; a new one (a takeover) commits, and readers see only what committed", async () => {
    const topic = await newTopic({ "max.message.bytes": "2000" });
    const producer = new TransactionalProducer(options(), "conformance-ours", () => 1_000_000);
    await producer.open();
    await producer.write([record(topic, Buffer.from("one"))], Date.now());
    const failure = await producer
      .write([record(topic, Buffer.from("two")), record(topic, Buffer.alloc(5_000))], Date.now())
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(classifyKafkaError(failure)).toBe("too-large");
    await expect(producer.write([record(topic, Buffer.from("three"))], Date.now())).rejects.toBeInstanceOf(
      SpentProducerError,
    );
    await producer.close();
    // Aborted, not left open: a read_committed read returns at once, past the failed transaction.
    expect((await readAll(topic)).map((read) => read.value?.toString())).toEqual(["one"]);
    const successor = new TransactionalProducer(options(), "conformance-ours", () => 1_000_000);
    await successor.open();
    await successor.write([record(topic, Buffer.from("three"))], Date.now());
    await successor.close();
    expect((await readAll(topic)).map((read) => read.value?.toString())).toEqual(["one", "three"]);
  }, 60_000);

  it("a read_committed fetch hands back aborted transactions' records with the list of them; the library's own filter of that list loses committed records after a lone ABORT marker: the committed reader fetches raw and filters itself", async () => {
    const topic = await newTopic({ "max.message.bytes": "2000" });
    const producer = rawProducer("conformance-aborted");
    try {
      for (const [value, commit] of [
        ["c1", true],
        ["a1", false],
        ["c2", true],
        // Refused (too large) once the partition joined the transaction: its abort leaves a marker
        // with no record before it, and the broker lists no aborted transaction for it.
        ["x".repeat(5_000), false],
      ] as const) {
        const transaction = await producer.beginTransaction();
        await transaction
          .send({ messages: [{ topic, key: Buffer.from("k"), value: Buffer.from(value) }] })
          .catch(() => undefined);
        await (commit ? transaction.commit() : transaction.abort());
      }
    } finally {
      await producer.close(true);
    }
    const consumer = new Consumer({
      ...options("conformance-raw"),
      groupId: "conformance-raw",
      autocommit: false,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    try {
      const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
      const topicMetadata = metadata.topics.get(topic);
      const leader = topicMetadata?.partitions[0]?.leader as number;
      // The records of data batches (control batches carry the transactions' markers).
      const valuesOf = (
        batches: readonly { attributes: number; records: readonly { value: Buffer | null }[] }[] | null | undefined,
      ) =>
        (batches ?? [])
          .filter((batch) => (batch.attributes & IS_CONTROL) === 0)
          .flatMap((batch) => batch.records.map((read) => read.value?.toString() ?? null));
      // As the broker sent it: every record below the stable offset, and the one aborted
      // transaction that has records (offset 2, after c1 and its COMMIT marker).
      const raw = await fetchCommittedRaw(consumer, {
        broker: metadata.brokers.get(leader) as Broker,
        topic: { name: topic, id: topicMetadata?.id as string },
        partition: 0,
        fetchOffset: 0n,
        maxWaitMs: 100,
        maxBytes: 1 << 20,
      });
      expect(valuesOf(raw?.records)).toEqual(["c1", "a1", "c2"]);
      expect(raw?.abortedTransactions).toEqual([{ producerId: expect.any(BigInt), firstOffset: 2n }]);
      // Through the library's Consumer.fetch (2.12.1): it drops the producer's records from offset 2
      // to its LAST abort marker, so c2, committed, is gone. When this fails the library has been
      // fixed, and raw-fetch.ts may go.
      const filtered = await consumer.fetch({
        node: leader,
        maxWaitTime: 100,
        isolationLevel: FetchIsolationLevels.READ_COMMITTED,
        topics: [
          {
            topicId: topicMetadata?.id as string,
            partitions: [
              {
                partition: 0,
                fetchOffset: 0n,
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
                partitionMaxBytes: 1 << 20,
              },
            ],
          },
        ],
      });
      expect(valuesOf(filtered.responses[0]?.partitions[0]?.records)).toEqual(["c1"]);
    } finally {
      await consumer.close(true);
    }
    expect((await readAll(topic)).map((read) => read.value?.toString())).toEqual(["c1", "c2"]);
  }, 60_000);

  it("writes a null value as Kafka's null (a tombstone), and the timestamp we give as the record's", async () => {
    const topic = await newTopic({ "cleanup.policy": "compact" });
    const producer = new TransactionalProducer(options(), "conformance-tombstone", () => 1_000_000);
    await producer.open();
    const stampedAt = Date.parse("2026-12-01T10:00:00.000Z");
    await producer.write([record(topic, Buffer.from("value"), "key"), record(topic, null, "key")], stampedAt);
    await producer.close();
    const read = await readAll(topic);
    expect(read.map((entry) => [entry.key?.toString(), entry.value])).toEqual([
      ["key", Buffer.from("value")],
      ["key", null],
    ]);
    expect(read.map((entry) => entry.timestampMs)).toEqual([stampedAt, stampedAt]);
  }, 60_000);

  it("a record stamped two hours ahead is refused as INVALID_TIMESTAMP (message.timestamp.after.max.ms): held for a retry, not a poison record", async () => {
    const topic = await newTopic();
    const producer = new TransactionalProducer(options(), "conformance-timestamp", () => 1_000_000);
    await producer.open();
    const failure = await producer
      .write([record(topic, Buffer.from("from the future"))], Date.now() + 2 * 3_600_000)
      .then(
        () => null,
        (error: unknown) => error,
      );
    await producer.close();
    expect(kafkaErrorIds(failure).has("INVALID_TIMESTAMP")).toBe(true);
    expect(classifyKafkaError(failure)).toBe("retriable");
    expect(await readAll(topic)).toEqual([]);
  }, 60_000);

  it("a producer that opened with the same transactional id fences the one before it (PRODUCER_FENCED or an epoch error, classified as fenced)", async () => {
    const topic = await newTopic();
    const first = new TransactionalProducer(options(), "conformance-fence", () => 1_000_000);
    await first.open();
    await first.write([record(topic, Buffer.from("first"))], Date.now());
    const second = new TransactionalProducer(options(), "conformance-fence", () => 1_000_000);
    await second.open();
    const failure = await first.write([record(topic, Buffer.from("zombie"))], Date.now()).then(
      () => null,
      (error: unknown) => error,
    );
    expect(classifyKafkaError(failure)).toBe("fenced");
    await second.write([record(topic, Buffer.from("second"))], Date.now());
    await Promise.all([first.close(), second.close()]);
    expect((await readAll(topic)).map((read) => read.value?.toString())).toEqual(["first", "second"]);
  }, 60_000);

  it("the admin client: a topic created twice is reported as existing, configs read back, partitions counted", async () => {
    const admin = new KafkaAdmin(options());
    try {
      const spec = { name: "conformance-admin", partitions: 2, replicas: 1, configs: { "cleanup.policy": "compact" } };
      expect(await admin.createTopic(spec)).toBe("created");
      expect(await admin.createTopic(spec)).toBe("exists");
      const configs = await admin.topicConfigs(["conformance-admin"], ["cleanup.policy", "max.message.bytes"]);
      expect(configs.get("conformance-admin")?.get("cleanup.policy")).toBe("compact");
      expect(Number(configs.get("conformance-admin")?.get("max.message.bytes"))).toBeGreaterThan(0);
      expect(await admin.partitionCounts(["conformance-admin", "no-such-topic"])).toEqual(
        new Map([["conformance-admin", 2]]),
      );
    } finally {
      await admin.close();
    }
    // Raw: the library's own createTopics refuses a topic that exists (why createTopic looks again).
    const raw = new Admin(options());
    try {
      await expect(raw.createTopics({ topics: ["conformance-admin"], partitions: 1, replicas: 1 })).rejects.toThrow();
    } finally {
      await raw.close();
    }
  }, 60_000);
});
