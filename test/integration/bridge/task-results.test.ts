import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import { DEFAULT_TOPICS, TaskResultRow, type TaskStatus } from "../../../src/contracts/index.ts";
import { FakeTaskMachine } from "../../fixtures/tasks/fake-task-agent.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { transactionsCommittedBy, waitForCaughtUp } from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { readTopicWithKafkaConsumer } from "../../helpers/kafka-oracle-reader.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const MACHINES = 8;
const TASKS_PER_ROUND = 25;
const STATUSES: readonly TaskStatus[] = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "REJECTED"];

/**
 * Task ends into Kafka: their own topic (machine-task-results), one flat row each, keyed by the
 * machine, exactly once across a kill -9 of the bridge while it commits; output chunks stay in
 * NATS. Read back with Kafka's own Java consumer (read_committed), not the bridge's reader.
 */
describe("edge-bridge: task ends into machine-task-results, exactly once", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let observer: NatsConnection;
  const bridges: BridgeProcess[] = [];

  const startBridge = async (): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess({
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_INSTANCE_ID: "task-results",
      EDGE_BRIDGE_LEASE_SECONDS: "3",
      EDGE_BRIDGE_BATCH_MAX_EVENTS: "20",
    });
    bridges.push(bridge);
    return bridge;
  };

  beforeAll(async () => {
    [nats, kafka] = await Promise.all([startNatsServer(), startKafkaBroker()]);
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: nats.url });
    expect(setup.code, setup.stderr).toBe(0);
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(bridges.splice(0).map((bridge) => bridge.dispose()));
    await observer?.close();
    await kafka?.dispose();
    await nats?.dispose();
  });

  it("every end once, as a TaskResultRow keyed by its machine, across a kill -9 mid-commit; no output chunk reaches Kafka", async () => {
    expect(EVENT_STREAMS).toContain("TASK_RESULTS");
    expect(EVENT_STREAMS).not.toContain("TASK_OUTPUT");
    const machines = Array.from({ length: MACHINES }, (_, index) => new FakeTaskMachine(observer, `tr-${index}`));
    const sent = new Map<string, { machineId: string; taskId: string; status: TaskStatus }>();
    const chunks: string[] = [];
    let task = 0;
    const round = async (): Promise<void> => {
      for (let index = 0; index < TASKS_PER_ROUND; index++, task++) {
        const machine = machines[task % MACHINES] as FakeTaskMachine;
        const taskId = `t-${task}`;
        const status = STATUSES[task % STATUSES.length] as TaskStatus;
        chunks.push(await machine.chunk(taskId, 0, "stderr", `task ${task} says why\n`));
        const eventId = await machine.result(
          taskId,
          {
            status,
            exitCode: status === "SUCCEEDED" ? 0 : status === "FAILED" ? 2 : null,
            error: status === "SUCCEEDED" || status === "FAILED" ? null : `${status.toLowerCase()} on purpose`,
            chunks: 1,
            bytesSeen: { stdout: 0, stderr: 18 },
            lastLines: { stdout: [], stderr: [`task ${task} says why`] },
          },
          `cmd-${task}`,
        );
        sent.set(eventId, { machineId: machine.machineId, taskId, status });
      }
    };

    await round();
    const first = await startBridge();
    await waitFor(
      "the bridge commits",
      async () => (await transactionsCommittedBy(observer, first.child.pid)) > 0,
      60_000,
    );
    const during = round();
    await first.stop("SIGKILL");
    await during;
    await round();
    await startBridge();
    await waitForCaughtUp(observer, { shards: EVENT_STREAMS.length + 1, timeoutMs: 120_000 });

    const records = await readTopicWithKafkaConsumer(kafka.bootstrap, DEFAULT_TOPICS.taskResults);
    const seen = new Map<string, number>();
    for (const record of records) {
      const row = TaskResultRow.parse(record.json);
      seen.set(row.eventId, (seen.get(row.eventId) ?? 0) + 1);
      const expected = sent.get(row.eventId);
      expect(expected, `a row nobody sent: ${row.eventId}`).toBeDefined();
      expect(record.keyText).toBe(row.machineId);
      expect(row).toMatchObject({
        machineId: expected?.machineId,
        taskId: expected?.taskId,
        status: expected?.status,
        causationId: `cmd-${expected?.taskId.slice(2)}`,
        lastStderr: `task ${expected?.taskId.slice(2)} says why`,
        stderrBytes: 18,
        chunks: 1,
      });
      expect(record.header("nats-stream")).toBe("TASK_RESULTS");
    }
    expect(sent.size).toBe(3 * TASKS_PER_ROUND);
    expect([...sent.keys()].filter((eventId) => !seen.has(eventId))).toEqual([]);
    expect([...seen].filter(([, count]) => count > 1)).toEqual([]);

    // Output stays in NATS: no chunk is in any topic the bridge writes.
    const elsewhere = await Promise.all(
      [DEFAULT_TOPICS.events, DEFAULT_TOPICS.deadLetter].map((topic) =>
        readTopicWithKafkaConsumer(kafka.bootstrap, topic),
      ),
    );
    const chunkIds = new Set(chunks);
    expect(
      elsewhere
        .flat()
        .filter(
          (record) => chunkIds.has(record.header("X-Event-ID") ?? "") || record.header("nats-stream") === "TASK_OUTPUT",
        ),
    ).toEqual([]);
  }, 400_000);
});
