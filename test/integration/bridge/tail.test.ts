import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { Admin, Producer, stringSerializers } from "@platformatic/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TailLine } from "../../../src/bridge/kafka/topic-tail.ts";
import { runBridgeCli } from "../../helpers/bridge-process.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const BRIDGE_CLI = resolve(import.meta.dirname, "../../../src/bridge/cli/main.ts");

/** See test/integration/kafka/kafka-broker.test.ts: producerId -1 so a new transactional producer is not fenced. */
function transactionalProducer(bootstrap: string, transactionalId: string): Producer<string, string, string, string> {
  return new Producer({
    clientId: `tail-test-${transactionalId}`,
    bootstrapBrokers: [bootstrap],
    transactionalId,
    idempotent: true,
    producerId: -1n,
    producerEpoch: -1,
    acks: -1,
    serializers: stringSerializers,
  });
}

const lines = (stdout: string): TailLine[] =>
  stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as TailLine);

describe("edge-bridge tail: what the bridge wrote, as read_committed readers see it", () => {
  let kafka: KafkaBrokerHandle;
  let env: Record<string, string>;
  let producer: Producer<string, string, string, string>;
  const topic = "devices-topic";

  const commit = async (key: string, value: string, headers: Record<string, string> = {}): Promise<void> => {
    const transaction = await producer.beginTransaction();
    await transaction.send({ messages: [{ topic, key, value, headers }] });
    await transaction.commit();
  };

  beforeAll(async () => {
    kafka = await startKafkaBroker();
    env = { EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap };
    const admin = new Admin({ clientId: "tail-test-admin", bootstrapBrokers: [kafka.bootstrap] });
    try {
      await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    } finally {
      await admin.close();
    }
    producer = transactionalProducer(kafka.bootstrap, "tail-test");
    await commit("m1", JSON.stringify({ machineId: "m1", status: "ONLINE" }), { __TypeId__: "row" });
    const aborted = await producer.beginTransaction();
    await aborted.send({ messages: [{ topic, key: "m2", value: JSON.stringify({ machineId: "m2" }) }] });
    await aborted.abort();
    await commit("m3", "not json");
  }, 120_000);

  afterAll(async () => {
    await producer?.close();
    await kafka?.dispose();
  });

  it("prints each committed record once, as a JSON line with key, partition, offset, headers and value; never an aborted one", async () => {
    const result = await runBridgeCli(["tail", topic], env, 60_000);
    expect(result.code, result.stderr).toBe(0);
    const printed = lines(result.stdout);
    expect(printed.map((line) => line.key).sort()).toEqual(["m1", "m3"]);
    const row = printed.find((line) => line.key === "m1");
    expect(row).toMatchObject({
      topic,
      headers: { __TypeId__: "row" },
      value: { machineId: "m1", status: "ONLINE" },
    });
    expect(row?.partition === 0 || row?.partition === 1).toBe(true);
    expect(BigInt(row?.offset ?? "-1")).toBeGreaterThanOrEqual(0n);
    expect(Number.isNaN(Date.parse(row?.timestamp ?? ""))).toBe(false);
    expect(printed.find((line) => line.key === "m3")).toMatchObject({ valueText: "not json" });
  });

  it("--follow prints what is committed later, and stops cleanly on SIGINT", async () => {
    const child = spawn(process.execPath, [BRIDGE_CLI, "tail", topic, "--follow"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
    try {
      await waitFor("the records already there", async () => lines(stdout).length === 2, 60_000, 100);
      await commit("m4", JSON.stringify({ machineId: "m4" }));
      await waitFor(
        "the record committed later",
        async () => lines(stdout).some((line) => line.key === "m4"),
        60_000,
        100,
      );
      child.kill("SIGINT");
      expect(await exited, stderr).toBe(0);
      expect(lines(stdout).map((line) => line.key)).toHaveLength(3);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("a topic that does not exist is one line naming the bridge's topics, exit 2", async () => {
    const result = await runBridgeCli(["tail", "devices-topc"], env, 60_000);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('topic "devices-topc" does not exist');
    expect(result.stderr).toContain('did you mean "devices-topic"?');
  });
});
