import { EdgeError } from "../../errors/index.ts";
import {
  type CommittedRecord,
  type KafkaClientOptions,
  partitionCount,
  readCommittedPartition,
  withKafkaAdmin,
} from "./client/index.ts";

/**
 * What `edge-bridge tail` prints for one record: a JSON line. Headers keep every value (a header the
 * event repeated is an array); a value that is JSON is shown as JSON, anything else as text.
 */
export interface TailLine {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: string;
  readonly key: string | null;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly value?: unknown;
  readonly valueText?: string;
}

export function tailLine(topic: string, partition: number, record: CommittedRecord): TailLine {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of record.headers) {
    const earlier = headers[name];
    headers[name] = earlier === undefined ? value : [...(Array.isArray(earlier) ? earlier : [earlier]), value];
  }
  const text = record.value?.toString("utf8") ?? null;
  let value: { value?: unknown; valueText?: string } = { value: null };
  if (text !== null) {
    try {
      value = { value: JSON.parse(text) };
    } catch {
      value = { valueText: text };
    }
  }
  return {
    topic,
    partition,
    offset: record.offset.toString(),
    timestamp: new Date(record.timestampMs).toISOString(),
    key: record.key?.toString("utf8") ?? null,
    headers,
    ...value,
  };
}

/** The topic has no partition: it does not exist (the message names the ones that do, when known). */
export class TopicNotFoundError extends EdgeError {
  readonly code = "EDGE_BRIDGE_TOPIC_NOT_FOUND";
  constructor(message: string) {
    super(message);
    this.name = "TopicNotFoundError";
  }
}

export interface TailOptions {
  /** Keep reading what is committed after the end, until `signal` aborts. */
  readonly follow: boolean;
  /** Start at the end as it stands now instead of the beginning (only new records). */
  readonly fromEnd: boolean;
  /** Between two reads of a partition that had nothing new, while following. */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  /** Waits `ms` unless the signal aborts first (tests pass a clock's). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Reads a topic as a read_committed consumer sees it (records of aborted transactions never
 * appear): partition by partition, each in offset order, up to the end as it stands; then, with
 * `follow`, whatever is committed later, until the signal aborts. Nothing is committed anywhere:
 * the reader has no consumer group of its own.
 */
export async function tailTopic(
  clientOptions: KafkaClientOptions,
  topic: string,
  options: TailOptions,
  onLine: (line: TailLine) => void,
): Promise<void> {
  // Asked first: the client answers a metadata request for a missing topic with an error that only
  // its message names.
  if (!(await withKafkaAdmin(clientOptions, (admin) => admin.listTopics())).has(topic))
    throw new TopicNotFoundError(`topic ${JSON.stringify(topic)} does not exist`);
  const partitions = await partitionCount(clientOptions, topic);
  const next: bigint[] = Array.from({ length: partitions }, () => 0n);
  const read = async (partition: number, print: boolean): Promise<boolean> => {
    let any = false;
    const { nextOffset } = await readCommittedPartition(
      clientOptions,
      topic,
      partition,
      next[partition] ?? 0n,
      (record) => {
        any = true;
        if (print) onLine(tailLine(topic, partition, record));
      },
    );
    next[partition] = nextOffset;
    return any;
  };
  for (let partition = 0; partition < partitions; partition++) await read(partition, !options.fromEnd);
  const sleep = options.sleep ?? defaultSleep;
  while ((options.follow || options.fromEnd) && !options.signal?.aborted) {
    let any = false;
    for (let partition = 0; partition < partitions && !options.signal?.aborted; partition++)
      any = (await read(partition, true)) || any;
    if (!any) await sleep(options.pollMs ?? 500, options.signal);
  }
}
