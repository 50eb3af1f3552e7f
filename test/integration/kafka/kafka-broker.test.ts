import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Admin,
  AuthenticationError,
  Consumer,
  compatibilityPartitioner,
  FetchIsolationLevels,
  type Message,
  MessagesStreamModes,
  murmur2,
  Producer,
  ProtocolError,
  type SASLOptions,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureKafkaRuntime } from "../../../scripts/kafka-runtime.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { waitFor } from "../../helpers/wait-for.ts";

type StringMessage = Message<string, string, string, string>;
type IsolationLevel = (typeof FetchIsolationLevels)[keyof typeof FetchIsolationLevels];

const BROKER_START_TIMEOUT_MS = 90_000;

function clientOptions(
  bootstrap: string,
  clientId: string,
  sasl?: SASLOptions,
): { clientId: string; bootstrapBrokers: string[]; sasl?: SASLOptions } {
  return { clientId, bootstrapBrokers: [bootstrap], ...(sasl ? { sasl } : {}) };
}

async function createTopic(bootstrap: string, topic: string, partitions: number, sasl?: SASLOptions): Promise<void> {
  const admin = new Admin(clientOptions(bootstrap, "test-admin", sasl));
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
}

/**
 * `producerId: -1n, producerEpoch: -1`: @platformatic/kafka 2.12.1 otherwise sends InitProducerId
 * with producerId 0 / epoch 0 instead of "none" (-1 / -1), and the coordinator answers PRODUCER_FENCED
 * to every new producer for a transactionalId it already maps to another producerId (a restart, or
 * the successor in the fencing test below); only ids that happen to have producerId 0 work.
 */
function transactionalProducer(bootstrap: string, transactionalId: string): Producer<string, string, string, string> {
  return new Producer({
    ...clientOptions(bootstrap, `producer-${transactionalId}`),
    transactionalId,
    idempotent: true,
    producerId: -1n,
    producerEpoch: -1,
    acks: -1,
    serializers: stringSerializers,
  });
}

/**
 * Reads `topic` from the beginning up to the end offsets it has when called (for read_committed:
 * the last stable offset). "Up to" is judged by the stream's fetch position, which also moves past
 * transaction markers, so a partition ending in a marker is still read to its end without sleeping.
 */
async function readTopic(
  bootstrap: string,
  topic: string,
  isolationLevel: IsolationLevel,
  sasl?: SASLOptions,
): Promise<StringMessage[]> {
  const consumer = new Consumer({
    ...clientOptions(bootstrap, "test-reader", sasl),
    groupId: `reader-${randomUUID()}`,
    deserializers: stringDeserializers,
    isolationLevel,
    autocommit: false,
  });
  try {
    const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel })).get(topic) ?? [];
    const stream = await consumer.consume({
      topics: [topic],
      mode: MessagesStreamModes.EARLIEST,
      isolationLevel,
      autocommit: false,
      maxWaitTime: 200,
    });
    // Keyed by position: a group rebalance on a loaded machine makes the stream fetch a partition
    // again from the start, and a record read twice is still one record of the topic.
    const byPosition = new Map<string, StringMessage>();
    stream.on("data", (message) => byPosition.set(`${message.partition}:${message.offset}`, message));
    const caughtUp = (): boolean =>
      stream.readableLength === 0 &&
      ends.every((end, partition) => (stream.offsetsToFetch.get(`${topic}:${partition}`) ?? 0n) >= end);
    await waitFor(`reading ${topic} up to offsets ${ends.join(",")}`, caughtUp, 20_000, 20);
    await stream.close();
    return [...byPosition.values()].sort((a, b) =>
      a.partition === b.partition ? Number(a.offset - b.offset) : a.partition - b.partition,
    );
  } finally {
    await consumer.close(true);
  }
}

/** The error and everything it wraps (`cause`, and `errors` of an AggregateError). */
function errorChain(error: unknown): unknown[] {
  if (!(error instanceof Error)) return [error];
  const nested = [
    ...(error instanceof AggregateError ? (error.errors as unknown[]) : []),
    ...(error.cause === undefined ? [] : [error.cause]),
  ];
  return [error, ...nested.flatMap(errorChain)];
}

function values(messages: readonly StringMessage[]): string[] {
  return messages.map((message) => message.value);
}

/** Java's own partition for each key: `Utils.toPositive(Utils.murmur2(key.getBytes(UTF_8))) % partitions`. */
const MURMUR_JAVA = `
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.kafka.common.utils.Utils;

public class Murmur {
  public static void main(String[] args) throws Exception {
    int partitions = Integer.parseInt(args[0]);
    StringBuilder out = new StringBuilder();
    for (String key : Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8)) {
      int hash = Utils.murmur2(key.getBytes(StandardCharsets.UTF_8));
      out.append(hash).append(' ').append(Utils.toPositive(hash) % partitions).append('\\n');
    }
    System.out.print(out);
  }
}
`;

/** Runs Murmur.java as a single-file source program against Kafka's jars; keys go through a UTF-8 file, not argv (locale). */
async function javaPartitions(
  keys: readonly string[],
  partitions: number,
): Promise<Array<{ hash: number; partition: number }>> {
  const dir = await mkdtemp(join(tmpdir(), "edge-kafka-murmur-"));
  try {
    const classpath = join(await ensureKafkaRuntime(), "libs", "*");
    await writeFile(join(dir, "Murmur.java"), MURMUR_JAVA);
    await writeFile(join(dir, "keys.txt"), `${keys.join("\n")}\n`);
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        "java",
        [
          "-XX:+UseSerialGC",
          "-XX:TieredStopAtLevel=1",
          "-cp",
          classpath,
          join(dir, "Murmur.java"),
          String(partitions),
          join(dir, "keys.txt"),
        ],
        { timeout: 60_000 },
        (error, out, err) => (error ? reject(new Error(`Murmur.java failed: ${error.message}\n${err}`)) : resolve(out)),
      ),
    );
    return stdout
      .trim()
      .split("\n")
      .map((line) => {
        const [hash, partition] = line.split(" ").map(Number);
        return { hash: hash ?? Number.NaN, partition: partition ?? Number.NaN };
      });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** 200 keys of every length class murmur2 treats differently (tails of 0-3 bytes), ASCII and multi-byte. */
function murmurKeys(): string[] {
  const unicode = ["gerät", "機械", "🚀", "Ωmega", "naïve-café", "ключ", "حاسوب", "𝔘𝔫𝔦"];
  const keys: string[] = [];
  for (let i = 0; i < 80; i++) keys.push(randomUUID());
  for (let i = 0; i < 60; i++) keys.push(i % 2 === 0 ? String(i) : `d-${i}`.repeat(1 + (i % 4)));
  for (let i = 0; i < 60; i++) keys.push(`${unicode[i % unicode.length]}${i % 3 === 0 ? "" : i}`);
  return keys;
}

describe("kafka broker harness: a real Apache Kafka 4.4.0 on loopback", () => {
  let broker: KafkaBrokerHandle;

  beforeAll(async () => {
    broker = await startKafkaBroker();
  }, BROKER_START_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.dispose();
  });

  it("read_committed sees the committed transaction and not the aborted one", async () => {
    const topic = "tx-visibility";
    await createTopic(broker.bootstrap, topic, 1);
    const producer = transactionalProducer(broker.bootstrap, "tx-visibility");
    try {
      const committed = await producer.beginTransaction();
      await committed.send({ messages: [{ topic, key: "k1", value: "committed", headers: { origin: "test" } }] });
      await committed.commit();
      const aborted = await producer.beginTransaction();
      await aborted.send({ messages: [{ topic, key: "k2", value: "aborted" }] });
      await aborted.abort();
    } finally {
      await producer.close();
    }

    const readCommitted = await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_COMMITTED);
    expect(values(readCommitted)).toEqual(["committed"]);
    expect(readCommitted[0]?.key).toBe("k1");
    expect(readCommitted[0]?.headers.get("origin")).toBe("test");
    // The aborted record is in the log: only the isolation level hides it.
    expect(values(await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_UNCOMMITTED))).toEqual([
      "committed",
      "aborted",
    ]);
  });

  it("a second producer with the same transactionalId fences the first", async () => {
    const topic = "tx-fencing";
    await createTopic(broker.bootstrap, topic, 1);
    const zombie = transactionalProducer(broker.bootstrap, "tx-fencing");
    const successor = transactionalProducer(broker.bootstrap, "tx-fencing");
    try {
      const zombieTransaction = await zombie.beginTransaction();
      await zombieTransaction.send({ messages: [{ topic, key: "k", value: "zombie-before" }] });

      const successorTransaction = await successor.beginTransaction();
      await expect(
        zombieTransaction.send({ messages: [{ topic, key: "k", value: "zombie-after" }] }),
      ).rejects.toThrow();
      await expect(zombieTransaction.commit()).rejects.toThrow();
      await successorTransaction.send({ messages: [{ topic, key: "k", value: "successor" }] });
      await successorTransaction.commit();
    } finally {
      await zombie.close(true).catch(() => undefined);
      await successor.close();
    }
    expect(values(await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_COMMITTED))).toEqual([
      "successor",
    ]);
  });

  it("keeps committed records across restart() and across kill() + start()", async () => {
    const topic = "durable";
    await createTopic(broker.bootstrap, topic, 1);
    const producer = transactionalProducer(broker.bootstrap, "durable");
    try {
      const transaction = await producer.beginTransaction();
      await transaction.send({ messages: [{ topic, key: "k", value: "survives" }] });
      await transaction.commit();
    } finally {
      await producer.close();
    }

    await broker.restart();
    expect(values(await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_COMMITTED))).toEqual(["survives"]);

    await broker.kill();
    await broker.start();
    expect(values(await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_COMMITTED))).toEqual(["survives"]);
  });

  it("murmur2 and compatibilityPartitioner place keys where Java's Kafka client would", async () => {
    const partitions = 3;
    const keys = murmurKeys();
    const java = await javaPartitions(keys, partitions);
    expect(java).toHaveLength(keys.length);
    const javaPartitionOf = new Map(keys.map((key, index) => [key, java[index]?.partition]));
    keys.forEach((key, index) => {
      const hash = murmur2(Buffer.from(key));
      expect({ key, hash }).toEqual({ key, hash: java[index]?.hash });
      expect({ key, partition: (hash & 0x7fffffff) % partitions }).toEqual({ key, partition: java[index]?.partition });
    });

    const topic = "murmur";
    await createTopic(broker.bootstrap, topic, partitions);
    const producer = new Producer({
      ...clientOptions(broker.bootstrap, "murmur-producer"),
      // A send retried after a timeout on a loaded machine must not write the keys twice (322 of 200).
      idempotent: true,
      acks: -1,
      partitioner: compatibilityPartitioner,
      serializers: stringSerializers,
    });
    try {
      await producer.send({ messages: keys.map((key) => ({ topic, key, value: key })) });
    } finally {
      await producer.close();
    }
    const landed = await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_UNCOMMITTED);
    expect(landed).toHaveLength(keys.length);
    for (const message of landed) {
      expect({ key: message.key, partition: message.partition }).toEqual({
        key: message.key,
        partition: javaPartitionOf.get(message.key),
      });
    }
    // All three partitions are used, so the comparison above is not vacuous.
    expect(new Set(landed.map((message) => message.partition)).size).toBe(partitions);
  });
});

describe("kafka broker harness: SASL (PLAIN and SCRAM-SHA-256)", () => {
  const plain: SASLOptions = { mechanism: "PLAIN", username: "alice", password: "alice-secret" };
  const scram: SASLOptions = { mechanism: "SCRAM-SHA-256", username: "bob", password: "bob-secret" };
  let broker: KafkaBrokerHandle;

  beforeAll(async () => {
    broker = await startKafkaBroker({
      sasl: {
        plain: { alice: "alice-secret" },
        scram: [{ user: "bob", password: "bob-secret", mechanism: "SCRAM-SHA-256" }],
      },
    });
  }, BROKER_START_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.dispose();
  });

  it("PLAIN and SCRAM-SHA-256 clients produce and read", async () => {
    const topic = "sasl";
    await createTopic(broker.bootstrap, topic, 1, plain);
    for (const sasl of [plain, scram]) {
      const producer = new Producer({
        ...clientOptions(broker.bootstrap, `producer-${sasl.mechanism}`, sasl),
        acks: -1,
        serializers: stringSerializers,
      });
      try {
        await producer.send({ messages: [{ topic, key: sasl.mechanism, value: `from ${sasl.mechanism}` }] });
      } finally {
        await producer.close();
      }
    }
    for (const sasl of [plain, scram]) {
      expect(values(await readTopic(broker.bootstrap, topic, FetchIsolationLevels.READ_COMMITTED, sasl))).toEqual([
        "from PLAIN",
        "from SCRAM-SHA-256",
      ]);
    }
  });

  it("refuses a wrong password with an authentication error", async () => {
    for (const sasl of [plain, scram]) {
      const admin = new Admin({
        ...clientOptions(broker.bootstrap, "wrong-password", { ...sasl, password: "wrong" }),
        retries: 0,
      });
      try {
        const error = await admin.listTopics().then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
        expect(error, sasl.mechanism).toBeInstanceOf(Error);
        const chain = errorChain(error);
        expect(
          chain.some((cause) => cause instanceof AuthenticationError),
          sasl.mechanism,
        ).toBe(true);
        expect(
          chain.some((cause) => cause instanceof ProtocolError && cause.apiId === "SASL_AUTHENTICATION_FAILED"),
          sasl.mechanism,
        ).toBe(true);
      } finally {
        await admin.close();
      }
    }
  });

  it("serves no one on the SASL listener without credentials", async () => {
    const admin = new Admin({
      ...clientOptions(broker.bootstrap, "no-credentials"),
      retries: 0,
      requestTimeout: 3_000,
    });
    try {
      await expect(admin.listTopics()).rejects.toThrow();
    } finally {
      await admin.close();
    }
  });
});
