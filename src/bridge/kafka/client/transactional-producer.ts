import {
  type BaseOptions,
  compatibilityPartitioner,
  type MessageToProduce,
  ProduceAcks,
  Producer,
} from "@platformatic/kafka";
import { EdgeError } from "../../../errors/index.ts";
import { type OutputRecord, recordSize } from "../../records/index.ts";
import { withDeadline } from "../deadline.ts";
import type { TransactionWriter } from "../transaction-writer.ts";

/** At most this many bytes per produce request inside a transaction: every partition batch stays under the broker's message.max.bytes. */
const MAX_SEND_BYTES = 512 * 1024;
/** A transaction (or the fencing at open) that takes longer than this failed: Kafka is away or stuck. */
const TRANSACTION_DEADLINE_MS = 30_000;
/** How long a failed transaction's abort may take before the producer is given up anyway. */
const ABORT_DEADLINE_MS = 5_000;

/** A write on a producer whose transaction failed: it must be closed and the shard taken over again. */
export class SpentProducerError extends EdgeError {
  readonly code = "EDGE_BRIDGE_PRODUCER_SPENT";
  constructor(transactionalId: string) {
    super(`the producer of ${transactionalId} failed a transaction and cannot write again: take the shard over anew`);
    this.name = "SpentProducerError";
  }
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
 *
 * After a failed transaction the producer is spent (SpentProducerError): the client numbers a
 * refused batch's records all the same, so its next transaction on that partition would be
 * refused as OUT_OF_ORDER_SEQUENCE_NUMBER however the failed one ended (the Kafka client
 * conformance test pins this). The failed transaction is aborted, and waited for, before the
 * failure is reported, so the broker does not hold the partitions' stable offset back until its
 * transaction timeout.
 */
export class TransactionalProducer implements TransactionWriter {
  readonly transactionalId: string;
  readonly #producer: Producer;
  readonly #limitOf: (topic: string) => number;
  #open: Awaited<ReturnType<Producer["beginTransaction"]>> | null = null;
  #spent = false;

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

  /** Commits the records as one transaction, or throws; after a throw, close this producer and open a new one. */
  async write(records: readonly OutputRecord[], timestampMs: number): Promise<void> {
    if (this.#spent) throw new SpentProducerError(this.transactionalId);
    try {
      await withDeadline(
        this.#write(records, BigInt(Math.trunc(timestampMs))),
        TRANSACTION_DEADLINE_MS,
        `a transaction of ${records.length} records`,
      );
    } catch (error) {
      this.#spent = true;
      throw error;
    }
  }

  async #write(records: readonly OutputRecord[], timestamp: bigint): Promise<void> {
    const transaction = this.#open ?? (await this.#producer.beginTransaction());
    this.#open = null;
    try {
      for (const chunk of chunksOf(records, this.#limitOf)) {
        await transaction.send({ messages: chunk.map((record) => toMessage(record, timestamp)) });
      }
      await transaction.commit();
    } catch (error) {
      // Ended now rather than at the broker's transaction timeout; if even that fails, the next
      // owner's fencing (maybe ours) aborts it.
      await withDeadline(transaction.abort(), ABORT_DEADLINE_MS, "aborting a failed transaction").catch(
        () => undefined,
      );
      throw error;
    }
  }

  async close(): Promise<void> {
    await withDeadline(this.#producer.close(true), 5_000, "closing the producer").catch(() => undefined);
  }
}

function toMessage(record: OutputRecord, timestamp: bigint): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  return {
    topic: record.topic,
    ...(record.key ? { key: record.key } : {}),
    // The library's types want a Buffer, but it writes null as Kafka's null value: a tombstone
    // (the Kafka client conformance test pins this).
    value: record.value as Buffer,
    headers: record.headers,
    timestamp,
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
