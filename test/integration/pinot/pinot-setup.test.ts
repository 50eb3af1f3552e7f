import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTopics } from "../../../src/bridge/kafka/topics.ts";
import { loadBridgeSettings } from "../../../src/bridge/settings/load-bridge-settings.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import type { CliResult } from "../../helpers/agent-process.ts";
import { runBridgeCli } from "../../helpers/bridge-process.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { listeningSocketsOf } from "../../helpers/listening-sockets.ts";
import { type PinotClusterHandle, startPinotCluster } from "../../helpers/pinot-cluster.ts";

/** `edge-bridge pinot-setup` as an operator runs it (creating a REALTIME table is slow on 2 cores). */
const pinotSetup = (env: Record<string, string>, controllerUrl: string): Promise<CliResult> =>
  runBridgeCli(["pinot-setup", "--controller", controllerUrl], env, 240_000);

describe("edge-bridge pinot-setup against a real Pinot and Kafka", () => {
  let kafka: KafkaBrokerHandle;
  let pinot: PinotClusterHandle;
  let dataDir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    [kafka, pinot] = await Promise.all([startKafkaBroker(), startPinotCluster()]);
    dataDir = await mkdtemp(join(tmpdir(), "edge-bridge-pinot-"));
    env = {
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_DATA_DIR: dataDir,
      EDGE_BRIDGE_CONFIG_DIR: dataDir,
      EDGE_BRIDGE_KAFKA_PARTITIONS: "3",
    };
    // The topics as the bridge makes them (3 partitions each).
    await ensureTopics(loadBridgeSettings({ env, flags: {}, privileged: false }).settings, silentLogger());
  }, 240_000);

  afterAll(async () => {
    await pinot?.dispose();
    await kafka?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("the test Pinot cluster and Kafka broker listen on loopback only, but for the one port Pinot 0.11 cannot bind to a host", async () => {
    const kafkaPid = kafka.pid();
    expect(kafkaPid).toBeDefined();
    const pinotSockets = await listeningSocketsOf(pinot.pid);
    const kafkaSockets = await listeningSocketsOf(kafkaPid ?? -1);
    const portOf = (url: string): number => Number(new URL(url).port);
    // The ports the tests connect to are among those found: the check below saw the JVMs' real sockets.
    expect(pinotSockets.map((socket) => socket.port)).toEqual(
      expect.arrayContaining([portOf(pinot.controllerUrl), portOf(pinot.brokerUrl)]),
    );
    expect(kafkaSockets.map((socket) => socket.port)).toContain(kafka.port);
    // The server's query port (Netty) has no host setting in Pinot 0.11: it is the one exception.
    const exposed = [...pinotSockets, ...kafkaSockets].filter(
      (socket) => !socket.loopback && socket.port !== pinot.serverQueryPort,
    );
    expect(pinotSockets.filter((socket) => socket.port === pinot.serverQueryPort)).toHaveLength(1);
    expect(
      exposed.map(({ address, port }) => (address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`)),
    ).toEqual([]);
  });

  it("creates the schemas and tables, changes nothing when run again, and refuses a partition count the topics do not have", async () => {
    const first = await pinotSetup(env, pinot.controllerUrl);
    expect(first.code, `${first.stdout}\n${first.stderr}\n${pinot.output()}`).toBe(0);
    for (const table of ["devices", "machine_telemetry", "machine_events", "task_results"]) {
      expect(first.stdout).toContain(`create-schema ${table}`);
      expect(first.stdout).toContain(`create-table ${table}`);
    }
    const tables = (await (await fetch(`${pinot.controllerUrl}/tables`)).json()) as { tables: string[] };
    expect([...tables.tables].sort()).toEqual(["devices", "machine_events", "machine_telemetry", "task_results"]);
    const devices = (await (await fetch(`${pinot.controllerUrl}/tables/devices?type=realtime`)).json()) as {
      REALTIME: { upsertConfig: { mode: string; comparisonColumn?: string } };
    };
    expect(devices.REALTIME.upsertConfig.mode).toBe("FULL");

    const again = await pinotSetup(env, pinot.controllerUrl);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/^(create|update)-/m);
    expect(again.stdout).toContain("unchanged");

    const mismatched = await pinotSetup({ ...env, EDGE_BRIDGE_KAFKA_PARTITIONS: "4" }, pinot.controllerUrl);
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toMatch(/refused, nothing changed/);
    expect(mismatched.stderr).toMatch(/partition/);
  }, 600_000);
});
