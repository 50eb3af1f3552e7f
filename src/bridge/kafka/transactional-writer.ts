import { compatibilityPartitioner, Producer, ProduceAcks, type BaseOptions, type MessageToProduce } from "@platformatic/kafka";
import { recordSize, type OutputRecord } from "../records/source-message.ts";

/** At most this many bytes per produce request inside a transaction: every partition batch stays under the broker's message.max.bytes. */
const MAX_SEND_BYTES = 512 * 1024;

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
export class TransactionalWriter {
  readonly transactionalId: string;
  readonly #producer: Producer;
  #open: Awaited<ReturnType<Producer["beginTransaction"]>> | null = null;

  constructor(clientOptions: BaseOptions, transactionalId: string) {
    this.transactionalId = transactionalId;
    this.#producer = new Producer({
      ...clientOptions,
      transactionalId,
      // "No producer yet": the client's default (id 0, epoch 0) makes the broker answer
      // PRODUCER_FENCED to a restarted owner whose id already has another producer id.
      producerId: -1n,
      producerEpoch: -1,
      idempotent: true,
      acks: ProduceAcks.ALL,
      partitioner: compatibilityPartitioner,
    });
  }

  /** Fences earlier producers of this id. The transaction it starts is used by the first write. */
  async open(): Promise<void> {
    this.#open = await this.#producer.beginTransaction();
  }

  async write(records: readonly OutputRecord[]): Promise<void> {
    const transaction = this.#open ?? (await this.#producer.beginTransaction());
    this.#open = null;
    try {
      for (const chunk of chunksOf(records)) {
        await transaction.send({ messages: chunk.map(toMessage) });
      }
      await transaction.commit();
    } catch (error) {
      // The transaction is dead either way; the broker aborts it when the next owner (maybe us) fences it.
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#producer.close(true).catch(() => undefined);
  }
}

function toMessage(record: OutputRecord): MessageToProduce<Buffer, Buffer, Buffer, Buffer> {
  return { topic: record.topic, ...(record.key ? { key: record.key } : {}), value: record.value, headers: record.headers };
}

function* chunksOf(records: readonly OutputRecord[]): Generator<OutputRecord[]> {
  let chunk: OutputRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = recordSize(record) + 64;
    if (chunk.length > 0 && bytes + size > MAX_SEND_BYTES) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(record);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}
