import { execFile } from "node:child_process";
import { join } from "node:path";
import { ensureKafkaToolsRuntime } from "../../scripts/kafka-tools-runtime.ts";
import type { ReadRecord } from "./kafka-topic-reader.ts";

/** The Java program that reads (Kafka's own consumer); `java` compiles and runs the single source file. */
const READER_SOURCE = join(import.meta.dirname, "kafka-reader", "CommittedTopicReader.java");
/** How long one topic may take to read to its end; past it the read fails, naming where each partition stood. */
const READ_DEADLINE_MS = 150_000;
const RUN_TIMEOUT_MS = READ_DEADLINE_MS + 60_000;

const fromHex = (text: string): Buffer | null => (text === "-" ? null : Buffer.from(text, "hex"));

/**
 * Everything committed in a topic, read by Apache Kafka's own Java consumer in read_committed mode
 * (test/helpers/kafka-reader/CommittedTopicReader.java, against the jars of
 * scripts/kafka-tools-runtime.ts): an oracle we did not write, so the exactly-once tests do not judge
 * the bridge with the bridge's own reader. It assigns every partition (no consumer group: no
 * rebalance can hand a record out twice, no group join can pass for an empty topic) and reads until
 * each partition's position reaches its last stable offset, taken when it starts. Records come per
 * partition in offset order; keys, values and headers travel as hex, so any byte survives.
 */
export async function readTopicWithKafkaConsumer(bootstrap: string, topic: string): Promise<ReadRecord[]> {
  const runtime = await ensureKafkaToolsRuntime();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      "java",
      [
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        `-Dlog4j2.configurationFile=${join(runtime, "log4j2.properties")}`,
        "-cp",
        join(runtime, "libs", "*"),
        READER_SOURCE,
        bootstrap,
        topic,
        String(READ_DEADLINE_MS),
      ],
      { maxBuffer: 1024 * 1024 * 1024, timeout: RUN_TIMEOUT_MS, killSignal: "SIGKILL" },
      (error, out, err) => {
        if (error)
          reject(new Error(`Kafka's consumer could not read ${topic}: ${error.message}\n${err.slice(-2_000)}`));
        else resolve(out);
      },
    );
  });
  const records: ReadRecord[] = [];
  for (const line of stdout.split("\n")) {
    if (line === "") continue;
    const fields = line.split("\t");
    if (fields.length !== 5) throw new Error(`Kafka's consumer printed something else than a record: ${line}`);
    const [partitionField, offsetField, headersField, keyField, valueField] = fields as [
      string,
      string,
      string,
      string,
      string,
    ];
    const headers: Array<readonly [string, string]> =
      headersField === "-"
        ? []
        : headersField.split(",").map((pair) => {
            const [name = "", value = "-"] = pair.split(":");
            return [fromHex(name)?.toString("utf8") ?? "", fromHex(value)?.toString("utf8") ?? ""] as const;
          });
    const key = fromHex(keyField);
    const value = fromHex(valueField);
    const keyText = key === null ? null : key.toString("utf8");
    const valueText = value === null ? null : value.toString("utf8");
    let json: unknown = null;
    try {
      json = valueText === null || valueText === "" ? null : JSON.parse(valueText);
    } catch {
      json = null;
    }
    records.push({
      partition: Number(partitionField),
      offset: BigInt(offsetField),
      key,
      value,
      headers,
      timestampMs: Number.NaN,
      keyText,
      json,
      header: (name) => headers.find(([headerName]) => headerName === name)?.[1],
    });
  }
  return records.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
}
