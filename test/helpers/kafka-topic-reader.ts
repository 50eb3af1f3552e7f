import type { BaseOptions } from "@platformatic/kafka";
import { type CommittedRecord, partitionCount, readCommittedPartition } from "../../src/bridge/kafka/client/index.ts";

export interface ReadRecord extends CommittedRecord {
  readonly partition: number;
  readonly keyText: string | null;
  readonly json: unknown;
  header(name: string): string | undefined;
}

/**
 * Everything committed in a topic, as a read_committed consumer sees it (aborted transactions
 * dropped), partition by partition in offset order. Uses the bridge's own committed reader, which
 * the Kafka tests check against the broker's own behaviour.
 */
export async function readTopic(bootstrap: string, topic: string): Promise<ReadRecord[]> {
  const options: BaseOptions = { clientId: `test-reader-${process.pid}`, bootstrapBrokers: [bootstrap] };
  const partitions = await partitionCount(options, topic);
  const records: ReadRecord[] = [];
  for (let partition = 0; partition < partitions; partition++) {
    await readCommittedPartition(options, topic, partition, 0n, (record) => {
      const text = record.value?.toString("utf8") ?? "";
      let json: unknown = null;
      try {
        json = text === "" ? null : JSON.parse(text);
      } catch {
        json = null;
      }
      records.push({
        ...record,
        partition,
        keyText: record.key?.toString("utf8") ?? null,
        json,
        header: (name) => record.headers.find(([key]) => key === name)?.[1],
      });
    });
  }
  return records;
}
