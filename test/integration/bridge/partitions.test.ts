import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import { type SimulatedFleet, startSimulatedFleet } from "../../fixtures/bridge/simulated-fleet.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import {
  type BridgeOutput,
  bridgeStatuses,
  checkExactlyOnce,
  readBridgeOutput,
  waitForCaughtUp,
} from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const PARTITIONS = 4;
/** Every event stream's shard, TELEMETRY's partitions, the devices shard. */
const SHARDS = EVENT_STREAMS.length + PARTITIONS + 1;
const isPartition = (shard: string): boolean => /^TELEMETRY-p\d+-of-\d+$/.test(shard);

/**
 * A partitioned TELEMETRY (contracts/partitions.ts, DESIGN "Partitioned telemetry"): bridge
 * instances share its partitions, and what it stored before it was partitioned is bridged first.
 * Read back with Kafka's own Java consumer in read_committed mode: every event exactly once, and
 * per machine in stream order across the partitioning.
 */
describe("edge-bridge: a partitioned telemetry stream", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let observer: NatsConnection;
  const bridges: BridgeProcess[] = [];
  let fleet: SimulatedFleet | undefined;

  const startBridge = async (group: string, instanceId: string): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess({
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_GROUP: group,
      // Each group's state topics its own: the tests share one Kafka.
      EDGE_BRIDGE_TOPIC_CHECKPOINT: `${group}-checkpoints`,
      EDGE_BRIDGE_INSTANCE_ID: instanceId,
      EDGE_BRIDGE_LEASE_SECONDS: "3",
      EDGE_BRIDGE_BATCH_MAX_EVENTS: "500",
    });
    bridges.push(bridge);
    return bridge;
  };
  const devSetup = async (partitions: number): Promise<string> => {
    const setup = await runCli(["dev-setup", "--telemetry-partitions", String(partitions)], {
      EDGE_AGENT_NATS_URL: nats.url,
    });
    expect(setup.code, setup.stderr).toBe(0);
    return setup.stdout;
  };
  /** Every telemetry record of these machines says the subject it was published on, never a partition's. */
  const publishedSubjectsOnly = (output: BridgeOutput, machines: readonly string[]): string[] =>
    output.telemetry
      .filter((record) => record.keyText !== null && machines.includes(record.keyText))
      .map((record) => String(record.header("nats-subject")))
      .filter((subject) => !/^machine\.[^.]+\.(telemetry|outbox)$/.test(subject));
  /** Every event of the fleet in Kafka once, in stream and device order, under the subject it was published on. */
  const expectBridgedOnce = (emitter: SimulatedFleet, output: BridgeOutput, events: number): void => {
    const report = checkExactlyOnce(emitter.emitted, output);
    expect({ missing: report.missing, duplicated: report.duplicated, order: report.orderViolations }).toEqual({
      missing: [],
      duplicated: [],
      order: [],
    });
    expect(report.sequenceViolations).toEqual([]);
    expect(report.delivered).toBe(events);
    expect(publishedSubjectsOnly(output, emitter.machineIds)).toEqual([]);
  };

  beforeAll(async () => {
    [nats, kafka] = await Promise.all([startNatsServer(), startKafkaBroker()]);
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  }, 120_000);

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((bridge) => bridge.dispose()));
    await fleet?.stop();
    fleet = undefined;
    const manager = await jetstreamManager(observer);
    for await (const name of manager.streams.names()) await manager.streams.delete(name);
  });

  afterAll(async () => {
    await observer?.close();
    await kafka?.dispose();
    await nats?.dispose();
  });

  it("two instances share the partitions: each runs two, every event exactly once, per-machine order kept; one killed, the other takes its partitions", async () => {
    expect(await devSetup(PARTITIONS)).toContain("stream TELEMETRY: created with subjects");
    fleet = await startSimulatedFleet({ connection: observer, machines: 20, prefix: "share" });
    const [first, second] = [await startBridge("share", "share-a"), await startBridge("share", "share-b")];
    await fleet.emit(3_000);
    await waitFor(
      "each instance running two of the four partitions",
      async () => {
        const statuses = await bridgeStatuses(observer, "share");
        const partitionsHeld = statuses.map((status) => status.shardsHeld.filter(isPartition).length);
        return statuses.length === 2 && partitionsHeld.every((held) => held === PARTITIONS / 2);
      },
      90_000,
    );
    await fleet.emit(3_000);
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000, group: "share" });

    // Both carried telemetry: each committed transactions on the partitions it held.
    const statuses = await bridgeStatuses(observer, "share");
    for (const bridge of [first, second]) {
      const own = statuses.find((status) => status.pid === bridge.child.pid);
      const partitionShards = own?.shards.filter((shard) => isPartition(shard.shard) && shard.produced > 0) ?? [];
      expect(partitionShards.length, JSON.stringify(own?.shardsHeld)).toBeGreaterThan(0);
    }
    const output = await readBridgeOutput(kafka.bootstrap);
    expectBridgedOnce(fleet, output, 6_000);
    // Nothing a partition read became a dead letter (its stored subjects were understood).
    expect(output.deadLetters.filter((record) => record.keyText?.startsWith("share") ?? false)).toEqual([]);

    // One killed while the load goes on: the other takes its partitions over, still exactly once, in order.
    const emitting = fleet.emit(3_000);
    await first.stop("SIGKILL");
    await emitting;
    await fleet.drained(60_000);
    await waitFor(
      "the survivor running all four partitions",
      async () => (await bridgeStatuses(observer, "share"))[0]?.shardsHeld.filter(isPartition).length === PARTITIONS,
      90_000,
    );
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000, group: "share" });
    const after = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect({ missing: after.missing, duplicated: after.duplicated, order: after.orderViolations }).toEqual({
      missing: [],
      duplicated: [],
      order: [],
    });
    expect(after.delivered).toBe(9_000);
  }, 500_000);

  it("partitioning a stream that holds an unbridged backlog: the backlog first, then the partitions; exactly once, order kept", async () => {
    expect(await devSetup(0)).toContain(
      "stream TELEMETRY: created with subjects machine.*.telemetry, machine.*.outbox",
    );
    fleet = await startSimulatedFleet({ connection: observer, machines: 20, prefix: "migrate" });
    // Part bridged before, unpartitioned.
    const before = await startBridge("migrate", "migrate-a");
    await fleet.emit(2_000);
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: EVENT_STREAMS.length + 1, timeoutMs: 120_000, group: "migrate" });
    await before.stop("SIGTERM");
    // A backlog stored unpartitioned, then partitioned, then more: the partitions' events of a
    // machine come after its backlog in the stream, and must in Kafka too.
    await fleet.emit(3_000);
    await fleet.drained(60_000);
    expect(await devSetup(PARTITIONS)).toContain("stream TELEMETRY: partitioned into 4");
    await fleet.emit(3_000);
    await fleet.drained(60_000);
    const manager = await jetstreamManager(observer);
    const subjects = (await manager.streams.info("TELEMETRY", { subjects_filter: ">" })).state.subjects ?? {};
    expect(Object.keys(subjects).some((subject) => subject.endsWith(".4.0") || subject.endsWith(".4.1"))).toBe(true);
    expect(Object.keys(subjects).some((subject) => /^machine\.[^.]+\.telemetry$/.test(subject))).toBe(true);

    await startBridge("migrate", "migrate-a");
    await startBridge("migrate", "migrate-b");
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 180_000, group: "migrate" });
    const output = await readBridgeOutput(kafka.bootstrap);
    expectBridgedOnce(fleet, output, 8_000);
    // The partitions started from the stream's own shard's checkpoint, past the backlog.
    const statuses = await bridgeStatuses(observer, "migrate");
    const partitionShards = statuses.flatMap((status) => status.shards.filter((shard) => isPartition(shard.shard)));
    expect(partitionShards.reduce((total, shard) => total + shard.produced, 0)).toBeGreaterThan(0);
  }, 500_000);
});
