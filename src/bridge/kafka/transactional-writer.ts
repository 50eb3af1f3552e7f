import {
  type BaseOptions,
  compatibilityPartitioner,
  type MessageToProduce,
  ProduceAcks,
  Producer,
} from "@platformatic/kafka";
import { type OutputRecord, recordSize } from "../records/source-message.ts";
import { withDeadline } from "./deadline.ts";

/** At most this many bytes per produce request inside a transaction: every partition batch stays under the broker's message.max.bytes. */
const MAX_SEND_BYTES = 512 * 1024;
/** A transaction (or the fencing at open) that takes longer than this failed: Kafka is away or stuck. */
const TRANSACTION_DEADLINE_MS = 30_000;

/** What a shard writes its transactions with: in this thread (TransactionalWriter) or the producer thread (ThreadedWriter). */
export interface TransactionWriter {
  readonly transactionalId: string;
  /** Fences earlier producers of the id; resolves once this one is the only one that can commit. */
  open(): Promise<void>;
  /** One transaction, committed, or a throw (then close this writer and open a new one). */
  write(records: readonly OutputRecord[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * One shard's transactional producer. `open()` registers the transactional id with the broker,
 * which fences any earlier producer of the same id (a previous owner that is still running, a
 * zombie) and aborts its open transaction: from then on only this producer can commit for the
 * shard. `write()` puts records into one transaction and commits it: all or nothing.
 *
 * Records are sent with the Java-compatible murmur2 partitioner (key = machine id), so a Java
 * producer of the same topic (OpenFrame's devices-topic) puts a machine on the same partition,
 * which Pinot's upsert needs.
 */
export class TransactionalWriter implements TransactionWriter {
  readonly transactionalId: string;
  readonly #producer: Producer;
  #open: Awaited<ReturnType<Producer["beginTransaction"]>> | null = null;

  readonly #limitOf: (topic: string) => number;

  /** `limitOf`: the most bytes of one topic's records a single produce request may carry. */
  constructor(clientOptions: BaseOptions, transactionalId: string, limitOf: (topic: string) => number) {
    this.transactionalId = transactionalId;
    this.#limitOf = limitOf;
    this.#producer = new Producer({
      ...clientOptions,
      transactionalId,
      // "No producer yet": the client's default (id 0, epoch 0) makes the broker answer
      // PRODUCER_FENCED to a restarted owner whose id already has another producer id.
      producerId: -1n,
      producerEpoch: -1,
      idempotent: true,
      // The shard retries (after a new takeover) itself. The client's own retry of a refused
      // batch resends it with sequence numbers already used, and the broker's real answer
      // (MESSAGE_TOO_LARGE, say) comes back as OUT_OF_ORDER_SEQUENCE_NUMBER.
      retries: 0,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
    });
  }

  /** Fences earlier producers of this id. The transaction it starts is used by the first write. */
  async open(): Promise<void> {
    this.#open = await withDeadline(
      this.#producer.beginTransaction(),
      TRANSACTION_DEADLINE_MS,
      `registering transactional id ${this.transactionalId}`,
    );
  }

  /** Commits the records as one transaction, or throws; after a throw, close this writer and open a new one. */
  async write(records: readonly OutputRecord[]): Promise<void> {
    await withDeadline(this.#write(records), TRANSACTION_DEADLINE_MS, `a transaction of ${records.length} records`);
  }

  async #write(records: readonly OutputRecord[]): Promise<void> {
    const transaction = this.#open ?? (await this.#producer.beginTransaction());
    this.#open = null;
    try {
      for (const chunk of chunksOf(records, this.#limitOf)) {
        await transaction.send({ messages: chunk.map(toMessage) });
      }
      await transaction.commit();
    } catch (error) {
      // The transaction is dead either way; the broker aborts it when the next owner (maybe us) fences it.
      void transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await withDeadline(this.#producer.close(true), 5_000, "closing the producer").catch(() => undefined);
  }
}

function toMessage(record: OutputRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  return {
    topic: record.topic,
    ...(record.key ? { key: record.key } : {}),
    value: record.value,
    headers: record.headers,
  };
}

/**
 * Splits the records into produce requests (all in the one transaction): each request carries at
 * most MAX_SEND_BYTES, and of any one topic at most that topic's limit, so no partition's record
 * batch exceeds what the broker takes (the client makes one batch per partition per request).
 */
function* chunksOf(records: readonly OutputRecord[], limitOf: (topic: string) => number): Generator<OutputRecord[]> {
  let chunk: OutputRecord[] = [];
  let bytes = 0;
  let bytesByTopic = new Map<string, number>();
  for (const record of records) {
    const size = recordSize(record) + 64;
    const topicBytes = bytesByTopic.get(record.topic) ?? 0;
    if (chunk.length > 0 && (bytes + size > MAX_SEND_BYTES || topicBytes + size > limitOf(record.topic))) {
      yield chunk;
      chunk = [];
      bytes = 0;
      bytesByTopic = new Map();
    }
    chunk.push(record);
    bytes += size;
    bytesByTopic.set(record.topic, (bytesByTopic.get(record.topic) ?? 0) + size);
  }
  if (chunk.length > 0) yield chunk;
}
