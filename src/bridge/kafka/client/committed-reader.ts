import { type BaseOptions, Consumer, IS_CONTROL, IS_TRANSACTIONAL, type KafkaRecord } from "@platformatic/kafka";
import { fetchCommitted } from "./raw-fetch.ts";

/** One committed record of a partition, as read back. */
export interface CommittedRecord {
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The record's timestamp (epoch ms), as the producer set it. */
  readonly timestampMs: number;
}

const CONTROL_ABORT = 0;
/** The most one fetch brings back; a checkpoint read is a few MB at most, so one or two fetches. */
const FETCH_MAX_BYTES = 8 * 1024 * 1024;

/** How long a read waits for other producers' open transactions to end (the broker aborts them after 30 s). */
const OPEN_TRANSACTIONS_WAIT_MS = 45_000;

/**
 * Reads a partition from `fromOffset` up to its high watermark as it stood at the first fetch,
 * handing over committed records only.
 *
 * Up to the high watermark, not the last stable offset: a read_committed fetch returns nothing past
 * the first transaction still open in the partition, and the checkpoint topic is one partition that
 * every shard writes. Stopping at the stable offset let a shard taking over miss its own newest
 * checkpoint, committed after another shard's transaction that was still open, and bridge again
 * what that checkpoint covered. So the read waits, fetch after fetch, until the transactions open
 * at its start have ended (a live owner commits within a batch; a dead one's is aborted by the
 * broker after the transaction timeout).
 *
 * Kafka leaves the filtering of aborted transactions to the client: the broker returns everything
 * below the last stable offset plus the list of aborted transactions (producer id, first offset),
 * and the client must drop the records of those producers up to their ABORT marker. This does it
 * as Kafka's own consumer does: an aborted transaction starts when its producer's first offset is
 * reached and ends at that producer's next ABORT marker. Markers alone would not do: compaction
 * removes them in time, while the broker's list of aborted transactions stays exact. The fetch
 * itself bypasses the client library's consumer, whose own filter drops committed records
 * (raw-fetch.ts says how).
 */
export async function readCommittedPartition(
  clientOptions: BaseOptions,
  topic: string,
  partition: number,
  fromOffset: bigint,
  onRecord: (record: CommittedRecord) => void,
): Promise<{ nextOffset: bigint }> {
  // Only for the cluster's metadata and its connections: its own fetch is not used (raw-fetch.ts).
  const consumer = new Consumer({
    ...clientOptions,
    groupId: `${clientOptions.clientId}-reader`,
    autocommit: false,
  });
  try {
    let offset = fromOffset;
    let readEnd: bigint | null = null;
    let waitingSinceMs: number | null = null;
    const abortedProducers = new Set<bigint>();
    let pendingAborts: Array<{ producerId: bigint; firstOffset: bigint }> = [];
    while (readEnd === null || offset < readEnd) {
      const partitionResponse = await fetchCommitted(consumer, {
        topic,
        partition,
        fetchOffset: offset,
        maxWaitMs: 100,
        maxBytes: FETCH_MAX_BYTES,
      });
      // Nothing returned yet below the end (a fetch that waited with nothing new may name no partition
      // at all): a transaction still open holds the stable offset back, or the broker is catching up
      // on its transaction index. Ask again until it ends.
      const keepWaiting = (): void => {
        waitingSinceMs ??= performance.now();
        if (performance.now() - waitingSinceMs > OPEN_TRANSACTIONS_WAIT_MS) {
          throw new Error(
            `${topic} partition ${partition}: nothing readable at offset ${offset} below ${readEnd ?? "its end"} for ${OPEN_TRANSACTIONS_WAIT_MS} ms (a transaction left open?)`,
          );
        }
      };
      if (!partitionResponse) {
        keepWaiting();
        continue;
      }
      if (partitionResponse.errorCode !== 0)
        throw new Error(
          `fetching ${topic} partition ${partition} failed with error code ${partitionResponse.errorCode}`,
        );
      readEnd ??= partitionResponse.highWatermark;
      if (offset < partitionResponse.logStartOffset) offset = partitionResponse.logStartOffset;
      pendingAborts = [...pendingAborts, ...(partitionResponse.abortedTransactions ?? [])].sort((a, b) =>
        a.firstOffset < b.firstOffset ? -1 : 1,
      );
      const batches = partitionResponse.records ?? [];
      if (batches.length === 0 && offset < readEnd) {
        keepWaiting();
        continue;
      }
      waitingSinceMs = null;
      for (const batch of batches) {
        const batchEnd = batch.firstOffset + BigInt(batch.lastOffsetDelta);
        // Every batch counts for the transactions' bounds, even one below the offset already read
        // (its records are skipped one by one below), as in Kafka's consumer: it may hold the
        // first offset of an aborted transaction, or the ABORT marker that ends one.
        while (pendingAborts.length > 0 && (pendingAborts[0] as { firstOffset: bigint }).firstOffset <= batchEnd) {
          abortedProducers.add((pendingAborts.shift() as { producerId: bigint }).producerId);
        }
        const transactional = (batch.attributes & IS_TRANSACTIONAL) !== 0;
        if ((batch.attributes & IS_CONTROL) !== 0) {
          const marker = batch.records[0]?.key;
          if (marker && marker.length >= 4 && marker.readInt16BE(2) === CONTROL_ABORT)
            abortedProducers.delete(batch.producerId);
        } else if (!(transactional && abortedProducers.has(batch.producerId))) {
          for (const record of batch.records) {
            const recordOffset = batch.firstOffset + BigInt(record.offsetDelta);
            if (recordOffset < offset || recordOffset >= readEnd) continue;
            onRecord({
              offset: recordOffset,
              key: record.key,
              value: record.value,
              headers: headersOf(record),
              timestampMs: Number(batch.firstTimestamp + record.timestampDelta),
            });
          }
        }
        if (batchEnd >= offset) offset = batchEnd + 1n;
        if (offset >= readEnd) break;
      }
    }
    return { nextOffset: offset };
  } finally {
    await consumer.close().catch(() => undefined);
  }
}

function headersOf(record: KafkaRecord): Array<[string, string]> {
  return record.headers.map(([key, value]) => [key?.toString("utf8") ?? "", value?.toString("utf8") ?? ""]);
}

/** How many partitions a topic has (0 when it does not exist). */
export async function partitionCount(clientOptions: BaseOptions, topic: string): Promise<number> {
  const consumer = new Consumer({ ...clientOptions, groupId: `${clientOptions.clientId}-reader`, autocommit: false });
  try {
    const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
    return metadata.topics.get(topic)?.partitionsCount ?? 0;
  } finally {
    await consumer.close().catch(() => undefined);
  }
}
