import { execFile } from "node:child_process";
import { join } from "node:path";
import { ensureKafkaToolsRuntime } from "../../scripts/kafka-tools-runtime.ts";
import type { ReadRecord } from "./kafka-topic-reader.ts";

const RECORD_END = "\u001c\n";
const FIELD = "\u001f";
const HEADER = "\u001e";
const NULL = "\u001dnull";
/** How long the console consumer waits for one more record before it calls the topic read. */
const IDLE_MS = 10_000;
const RUN_TIMEOUT_MS = 180_000;

/**
 * Everything committed in a topic, read by Apache Kafka's own console consumer
 * (org.apache.kafka.tools.consumer.ConsoleConsumer, scripts/kafka-tools-runtime.ts) with
 * `--isolation-level read_committed`: an oracle we did not write, so the exactly-once tests do not
 * judge the bridge with the bridge's own reader. It runs from the beginning until no record comes
 * for 10 s; records come per partition in offset order. Keys and values are read as UTF-8 text
 * (what every topic the bridge writes holds), headers as `name:value` pairs.
 */
export async function readTopicWithConsoleConsumer(bootstrap: string, topic: string): Promise<ReadRecord[]> {
  const runtime = await ensureKafkaToolsRuntime();
  const property = (setting: string): string[] => ["--formatter-property", setting];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      "java",
      [
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        `-Dlog4j2.configurationFile=${join(runtime, "log4j2.properties")}`,
        "-cp",
        join(runtime, "libs", "*"),
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--isolation-level",
        "read_committed",
        "--timeout-ms",
        String(IDLE_MS),
        ...property("print.key=true"),
        ...property("print.headers=true"),
        ...property("print.partition=true"),
        ...property("print.offset=true"),
        ...property(`key.separator=${FIELD}`),
        ...property(`headers.separator=${HEADER}`),
        ...property(`line.separator=${RECORD_END}`),
        ...property(`null.literal=${NULL}`),
      ],
      { maxBuffer: 512 * 1024 * 1024, timeout: RUN_TIMEOUT_MS, killSignal: "SIGKILL" },
      (error, out, err) => {
        // It ends with a TimeoutException once idle for --timeout-ms, and exits 0.
        if (error) reject(new Error(`the console consumer failed on ${topic}: ${error.message}\n${err.slice(-2_000)}`));
        else resolve(out);
      },
    );
  });
  const records: ReadRecord[] = [];
  for (const chunk of stdout.split(RECORD_END).slice(0, -1)) {
    // The tool's own notices (a deprecation, log lines) share stdout: a record starts at "Partition:".
    const start = chunk.lastIndexOf("\nPartition:");
    const line = chunk.startsWith("Partition:") ? chunk : start >= 0 ? chunk.slice(start + 1) : null;
    if (line === null) throw new Error(`the console consumer printed something else than a record: ${chunk}`);
    const [partitionField, offsetField, headersField, keyField, ...valueParts] = line.split(FIELD);
    const value = valueParts.join(FIELD);
    const headers: Array<readonly [string, string]> =
      headersField === "NO_HEADERS" || headersField === undefined
        ? []
        : headersField.split(HEADER).map((pair) => {
            const colon = pair.indexOf(":");
            return [pair.slice(0, colon), pair.slice(colon + 1)] as const;
          });
    const keyText = keyField === NULL || keyField === undefined ? null : keyField;
    const valueText = value === NULL ? null : value;
    let json: unknown = null;
    try {
      json = valueText === null || valueText === "" ? null : JSON.parse(valueText);
    } catch {
      json = null;
    }
    records.push({
      partition: Number(partitionField?.slice("Partition:".length)),
      offset: BigInt(offsetField?.slice("Offset:".length) ?? "-1"),
      key: keyText === null ? null : Buffer.from(keyText),
      value: valueText === null ? null : Buffer.from(valueText),
      headers,
      timestampMs: Number.NaN,
      keyText,
      json,
      header: (name) => headers.find(([key]) => key === name)?.[1],
    });
  }
  return records.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
}
