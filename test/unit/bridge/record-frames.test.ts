import { describe, expect, it } from "vitest";
import { decodeRecords, encodeRecords } from "../../../src/bridge/kafka/record-frames.ts";
import type { OutputRecord } from "../../../src/bridge/records/source-message.ts";

describe("record frames (the batch handed to the producer thread)", () => {
  it("carries every record whole: topic, key or none, value or a tombstone, and repeated headers in order", () => {
    const headers = new Map<Buffer, Buffer>([
      [Buffer.from("X-Custom"), Buffer.from("one")],
      [Buffer.from("X-Custom"), Buffer.from("two")],
      [Buffer.from("nats-stream"), Buffer.from("TELEMETRY")],
    ]);
    const records: OutputRecord[] = [
      { topic: "machine-telemetry", key: Buffer.from("m-1"), value: Buffer.from('{"a":1}'), headers },
      { topic: "edge-bridge-dead-letter", key: undefined, value: Buffer.alloc(0), headers: new Map() },
      { topic: "edge-bridge-checkpoints.TELEMETRY", key: Buffer.from("dedupe/m-1/"), value: null, headers: new Map() },
      {
        topic: "machine-telemetry",
        key: Buffer.from("ünïcode-☃"),
        value: Buffer.alloc(70_000, 7),
        headers: new Map([[Buffer.from("k"), Buffer.from("v")]]),
      },
    ];
    const decoded = decodeRecords(encodeRecords(records));
    const plain = (list: readonly OutputRecord[]) =>
      list.map((record) => ({
        topic: record.topic,
        key: record.key?.toString("hex") ?? null,
        value: record.value?.toString("hex") ?? null,
        headers: [...record.headers].map(([name, value]) => [name.toString(), value.toString()]),
      }));
    expect(plain(decoded)).toEqual(plain(records));
  });

  it("is empty for no records", () => {
    expect(decodeRecords(encodeRecords([]))).toEqual([]);
  });
});
