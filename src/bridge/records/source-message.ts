import type { StreamMessage } from "../source/index.ts";

/** One event as the bridge reads it from a JetStream stream (pure data: records are built without a server). */
export type SourceMessage = StreamMessage;

export function headerValue(message: SourceMessage, name: string): string | undefined {
  for (const [key, value] of message.headers) if (key === name) return value;
  return undefined;
}

/** A record ready for the Kafka producer: bytes only, so the hot path serialises once. */
export interface OutputRecord {
  readonly topic: string;
  readonly key: Buffer | undefined;
  /** null: a tombstone (compaction deletes the key). */
  readonly value: Buffer | null;
  /** Distinct Buffer keys, so a header name may repeat, as Kafka allows. */
  readonly headers: Map<Buffer, Buffer>;
}

export function recordSize(record: OutputRecord): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [key, value] of record.headers) size += key.length + value.length;
  return size;
}

/** The body as text, decoded in place (no copy: the hot path reads every event). */
export function textOf(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
}
