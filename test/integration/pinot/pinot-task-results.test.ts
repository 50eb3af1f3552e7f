import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTopics } from "../../../src/bridge/kafka/topics.ts";
import { machinesThatFailedTask, taskOutcomes } from "../../../src/bridge/pinot/operator-queries.ts";
import { loadBridgeSettings } from "../../../src/bridge/settings/load-bridge-settings.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { FakeTaskMachine } from "../../fixtures/tasks/fake-task-agent.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, runBridgeCli, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { type PinotClusterHandle, startPinotCluster } from "../../helpers/pinot-cluster.ts";
import { queryCount, querySql, resultRecords } from "../../helpers/pinot-query.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/**
 * "Which machines failed task X and why" is one query: an operator sends a fleet task with
 * `edge-agent task run --tag`, the machines (on the wire, as agents publish) answer, the bridge
 * carries the ends to machine-task-results, and `pinot-setup`'s task_results table answers it.
 */
describe("task ends in Pinot: task_results", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let pinot: PinotClusterHandle;
  let observer: NatsConnection;
  let settingsDir: string;
  let bridge: BridgeProcess | undefined;
  const machines: FakeTaskMachine[] = [];

  beforeAll(async () => {
    [nats, kafka, pinot] = await Promise.all([startNatsServer(), startKafkaBroker(), startPinotCluster()]);
    const streams = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: nats.url });
    expect(streams.code, streams.stderr).toBe(0);
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    settingsDir = await mkdtemp(join(tmpdir(), "edge-bridge-pinot-tasks-"));
  }, 300_000);

  afterAll(async () => {
    await bridge?.dispose();
    await Promise.all(machines.map((machine) => machine.stop()));
    await observer?.close();
    await pinot?.dispose();
    await kafka?.dispose();
    await nats?.dispose();
    if (settingsDir) await rm(settingsDir, { recursive: true, force: true });
  });

  it("pinot-setup makes task_results; a fleet task's ends are rows, and the operator's query names who failed and why", async () => {
    const env = {
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_KAFKA_PARTITIONS: "3",
      EDGE_BRIDGE_INSTANCE_ID: "pinot-tasks",
      EDGE_BRIDGE_DATA_DIR: settingsDir,
      EDGE_BRIDGE_CONFIG_DIR: settingsDir,
    };
    await ensureTopics(loadBridgeSettings({ env, flags: {}, privileged: false }).settings, silentLogger());
    const setup = await runBridgeCli(["pinot-setup", "--controller", pinot.controllerUrl], env, 240_000);
    expect(setup.code, `${setup.stdout}\n${setup.stderr}`).toBe(0);
    expect(setup.stdout).toContain("create-table task_results");
    bridge = await startBridgeProcess(env);

    for (const [index, site] of ["lab", "lab", "lab", "office"].entries()) {
      const machine = new FakeTaskMachine(observer, `pt-${index}`, { site });
      await machine.start();
      machines.push(machine);
    }
    const sent = await runCli(
      [
        "task",
        "run",
        "--tag",
        "site=lab",
        "--no-follow",
        "--task-id",
        "rotate-logs-7",
        "--",
        "logrotate",
        "-f",
        "/etc/x",
      ],
      { EDGE_AGENT_NATS_URL: nats.url },
    );
    expect(sent.code, sent.stderr).toBe(0);
    const [ok, failed, stuck, office] = machines as [
      FakeTaskMachine,
      FakeTaskMachine,
      FakeTaskMachine,
      FakeTaskMachine,
    ];
    for (const machine of [ok, failed, stuck]) await machine.received(1);
    const causation = ok.tasks[0]?.headers["X-Event-ID"];
    await ok.result("rotate-logs-7", { status: "SUCCEEDED" }, causation);
    await failed.result(
      "rotate-logs-7",
      {
        status: "FAILED",
        exitCode: 1,
        bytesSeen: { stdout: 0, stderr: 44 },
        chunks: 1,
        lastLines: { stdout: [], stderr: ["error: /etc/x: No such file or directory"] },
      },
      causation,
    );
    await stuck.result(
      "rotate-logs-7",
      { status: "TIMED_OUT", signal: "SIGKILL", error: "still running after 300 s: stopped, its whole process tree" },
      causation,
    );
    expect(office.tasks).toEqual([]);

    await waitFor(
      "the three ends queryable",
      async () =>
        (await queryCount(pinot.brokerUrl, "SELECT COUNT(*) FROM task_results WHERE taskId = 'rotate-logs-7'")) === 3,
      180_000,
      1_000,
    );
    const why = resultRecords(await querySql(pinot.brokerUrl, machinesThatFailedTask("rotate-logs-7")));
    expect(why).toEqual([
      expect.objectContaining({
        machineId: "pt-1",
        status: "FAILED",
        exitCode: 1,
        lastStderr: "error: /etc/x: No such file or directory",
      }),
      expect.objectContaining({
        machineId: "pt-2",
        status: "TIMED_OUT",
        signal: "SIGKILL",
        error: "still running after 300 s: stopped, its whole process tree",
      }),
    ]);
    const outcomes = resultRecords(await querySql(pinot.brokerUrl, taskOutcomes("rotate-logs-7")));
    expect(Object.fromEntries(outcomes.map((row) => [row.status, Number(row.machines)]))).toEqual({
      SUCCEEDED: 1,
      FAILED: 1,
      TIMED_OUT: 1,
    });
    if (process.env.PINOT_QUERY_OUTPUT === "1") console.log(JSON.stringify({ why, outcomes }, null, 2));
  }, 600_000);
});
