import type { OutputRecord } from "../records/index.ts";

/**
 * A batch of records as one ArrayBuffer, so it crosses to the producer thread by transfer (no
 * copy, no structured clone of thousands of small Buffers). Layout, little-endian:
 *   u32 records, u16 topics, topics: (u16 length, utf-8)...
 *   per record: u16 topic index, i32 key length (-1: no key), key, i32 value length (-1: null), value,
 *               u16 headers, headers: (u16 name length, name, u32 value length, value)...
 * Decoding gives Buffers that are views into the frame: the thread reads them where they are.
 */
export function encodeRecords(records: readonly OutputRecord[]): ArrayBuffer {
  const topics = [...new Set(records.map((record) => record.topic))];
  const topicBytes = topics.map((topic) => Buffer.from(topic));
  let size = 4 + 2 + topicBytes.reduce((total, bytes) => total + 2 + bytes.length, 0);
  for (const record of records) {
    size += 2 + 4 + (record.key?.length ?? 0) + 4 + (record.value?.length ?? 0) + 2;
    for (const [name, value] of record.headers) size += 2 + name.length + 4 + value.length;
  }
  const frame = new ArrayBuffer(size);
  const view = new DataView(frame);
  const bytes = new Uint8Array(frame);
  let offset = 0;
  const u16 = (value: number): void => {
    view.setUint16(offset, value, true);
    offset += 2;
  };
  const u32 = (value: number): void => {
    view.setUint32(offset, value, true);
    offset += 4;
  };
  const put = (data: Uint8Array): void => {
    bytes.set(data, offset);
    offset += data.length;
  };
  u32(records.length);
  u16(topics.length);
  for (const topic of topicBytes) {
    u16(topic.length);
    put(topic);
  }
  const topicIndex = new Map(topics.map((topic, index) => [topic, index]));
  for (const record of records) {
    u16(topicIndex.get(record.topic) as number);
    if (record.key) {
      view.setInt32(offset, record.key.length, true);
      offset += 4;
      put(record.key);
    } else {
      view.setInt32(offset, -1, true);
      offset += 4;
    }
    if (record.value) {
      view.setInt32(offset, record.value.length, true);
      offset += 4;
      put(record.value);
    } else {
      view.setInt32(offset, -1, true);
      offset += 4;
    }
    u16(record.headers.size);
    for (const [name, value] of record.headers) {
      u16(name.length);
      put(name);
      u32(value.length);
      put(value);
    }
  }
  return frame;
}

export function decodeRecords(frame: ArrayBuffer): OutputRecord[] {
  const view = new DataView(frame);
  let offset = 0;
  const u16 = (): number => {
    const value = view.getUint16(offset, true);
    offset += 2;
    return value;
  };
  const u32 = (): number => {
    const value = view.getUint32(offset, true);
    offset += 4;
    return value;
  };
  const take = (length: number): Buffer => {
    const slice = Buffer.from(frame, offset, length);
    offset += length;
    return slice;
  };
  const count = u32();
  const topics: string[] = [];
  for (let index = u16(); index > 0; index--) topics.push(take(u16()).toString("utf8"));
  const records: OutputRecord[] = [];
  for (let index = 0; index < count; index++) {
    const topic = topics[u16()] as string;
    const keyLength = view.getInt32(offset, true);
    offset += 4;
    const key = keyLength >= 0 ? take(keyLength) : undefined;
    const valueLength = view.getInt32(offset, true);
    offset += 4;
    const value = valueLength >= 0 ? take(valueLength) : null;
    const headers = new Map<Buffer, Buffer>();
    for (let header = u16(); header > 0; header--) {
      const name = take(u16());
      headers.set(name, take(u32()));
    }
    records.push({ topic, key, value, headers });
  }
  return records;
}
