import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import { type SimulatedFleet, startSimulatedFleet } from "../../fixtures/bridge/simulated-fleet.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { bridgeStatuses, checkExactlyOnce, readBridgeOutput, waitForCaughtUp } from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { holdFor, waitFor } from "../../helpers/wait-for.ts";

const SHARDS = EVENT_STREAMS.length + 1;

/**
 * The bridge's guarantee under faults, each checked by reading every topic back with a
 * read_committed reader: every event exactly once, in stream order per machine.
 */
describe("edge-bridge: exactly once into Kafka under faults", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let observer: NatsConnection;
  const bridges: BridgeProcess[] = [];
  let fleet: SimulatedFleet | undefined;

  const bridgeEnv = (instanceId: string): Record<string, string> => ({
    EDGE_BRIDGE_NATS_URL: nats.url,
    EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
    EDGE_BRIDGE_INSTANCE_ID: instanceId,
    EDGE_BRIDGE_LEASE_SECONDS: "3",
    EDGE_BRIDGE_BATCH_MAX_EVENTS: "500",
  });
  /** Transactions this very process committed (statuses are per process). */
  const committedBy = async (bridge: BridgeProcess): Promise<number> => {
    const statuses = await bridgeStatuses(observer).catch(() => []);
    const own = statuses.find((status) => status.pid === bridge.child.pid);
    return own ? own.shards.reduce((total, shard) => total + shard.transactionsCommitted, 0) : 0;
  };
  const startBridge = async (instanceId: string): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess(bridgeEnv(instanceId));
    bridges.push(bridge);
    return bridge;
  };

  beforeAll(async () => {
    [nats, kafka] = await Promise.all([startNatsServer(), startKafkaBroker()]);
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: nats.url });
    expect(setup.code, setup.stderr).toBe(0);
    observer = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  }, 120_000);

  afterEach(async () => {
    await Promise.all(bridges.splice(0).map((bridge) => bridge.dispose()));
    // A test that failed midway must not leave the next one without its servers.
    await Promise.all([nats.start(), kafka.start()]);
    await fleet?.stop();
    fleet = undefined;
  });

  afterAll(async () => {
    await observer?.close();
    await kafka?.dispose();
    await nats?.dispose();
  });

  it("kill -9 of the bridge mid-transaction 20 times over 20,000 events: every event exactly once, in order", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 20, prefix: "kill" });
    for (let round = 0; round < 20; round++) {
      // A backlog before it starts, and more arriving while it works: the kill hits a busy bridge.
      await fleet.emit(500);
      const bridge = await startBridge("kill-test");
      const before = await waitFor(
        `round ${round}: the bridge commits`,
        async () => (await committedBy(bridge)) || false,
        60_000,
      );
      const emitting = fleet.emit(500);
      // Killed once it has committed again while the new load arrives: at work, at whatever point
      // of its next transaction the status read leaves it.
      await waitFor(
        `round ${round}: the bridge commits again`,
        async () => (await committedBy(bridge)) > before,
        60_000,
        50,
      );
      await bridge.stop("SIGKILL");
      await emitting;
    }
    await startBridge("kill-test");
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000 });

    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect(report.emitted).toBe(20_000);
    expect(report.missing).toEqual([]);
    expect(report.duplicated).toEqual([]);
    expect(report.delivered).toBe(20_000);
    expect(report.orderViolations).toEqual([]);
    expect(report.sequenceViolations).toEqual([]);
  }, 600_000);

  it("Kafka stopped for 60 s, then back: nothing acked that Kafka did not take, 0 lost, 0 duplicated", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 10, prefix: "kafka-down" });
    const bridge = await startBridge("kafka-down");
    await fleet.emit(1_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    await kafka.stop();
    // Events keep coming while Kafka is away: they wait in JetStream, unacked.
    for (let second = 0; second < 60; second++) {
      await fleet.emit(100);
      await holdFor(1_000, "Kafka stays away for 60 s while the agents send 100 events a second");
    }
    await fleet.drained(30_000);
    const statusDuring = (await bridgeStatuses(observer))[0];
    const during = statusDuring?.shards.find((shard) => shard.shard === "TELEMETRY");
    await kafka.start();
    // It noticed (and said why), rather than hanging on a broker that went away.
    expect(["retrying", "starting"]).toContain(during?.state);
    expect(during?.lastError).toBeTruthy();
    // An operator saw it as it happened: one warning for the bridge, and the status says so.
    expect(statusDuring?.kafka).toMatchObject({
      reachable: false,
      problem: expect.stringMatching(/^Kafka unreachable for \d+ s/),
    });
    const said = (text: string) => bridge.logs().filter((line) => String(line.msg).startsWith(text));
    expect(said("Kafka has not answered the bridge for a while")).toEqual([
      expect.objectContaining({ level: "warn", brokers: [kafka.bootstrap] }),
    ]);
    await fleet.emit(500);
    await fleet.drained(30_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000 });
    expect(said("Kafka is reachable again")).toEqual([
      expect.objectContaining({ level: "warn", unreachableSeconds: expect.any(Number) }),
    ]);
    expect((await bridgeStatuses(observer))[0]?.kafka).toEqual({
      reachable: true,
      unreachableSince: null,
      problem: null,
    });
    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect(report.emitted).toBeGreaterThan(6_000);
    expect({ missing: report.missing, duplicated: report.duplicated, order: report.orderViolations }).toEqual({
      missing: [],
      duplicated: [],
      order: [],
    });
    expect(report.delivered).toBe(report.emitted);
  }, 300_000);

  it("nats-server restarted under load: 0 lost, 0 duplicated, stream order kept", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 10, prefix: "nats-restart" });
    const bridge = await startBridge("nats-restart");
    await fleet.emit(2_000);
    const emitting = fleet.emit(2_000);
    // Restarted once the bridge is at work on the load.
    await waitFor("the bridge to commit some of the load", async () => (await committedBy(bridge)) > 0, 60_000, 50);
    await nats.restart();
    await emitting;
    await fleet.emit(1_000);
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000 });
    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect({ missing: report.missing, duplicated: report.duplicated, order: report.orderViolations }).toEqual({
      missing: [],
      duplicated: [],
      order: [],
    });
    expect(report.delivered).toBe(5_000);
  }, 300_000);

  it("two, then three instances share the shards; one killed: its shards move, 0 duplicated, per-device order kept", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 20, prefix: "scale" });
    const first = await startBridge("scale-a");
    await startBridge("scale-b");
    await fleet.emit(3_000);
    await waitFor(
      "two instances sharing the shards",
      async () => {
        const statuses = await bridgeStatuses(observer);
        return (
          statuses.length === 2 &&
          statuses.every((status) => status.shardsHeld.length >= 4) &&
          statuses.reduce((total, status) => total + status.shardsHeld.length, 0) === SHARDS
        );
      },
      60_000,
    );
    await startBridge("scale-c");
    const emitting = fleet.emit(4_000);
    // A shard moves only between two of its transactions, while 4,000 events flow: on a loaded
    // 2-core machine (Kafka, three bridges and the fleet) that took over a minute once.
    await waitFor(
      "three instances sharing the shards",
      async () => {
        const statuses = await bridgeStatuses(observer);
        return (
          statuses.length === 3 &&
          statuses.every((status) => status.shardsHeld.length >= 3) &&
          statuses.reduce((total, status) => total + status.shardsHeld.length, 0) === SHARDS
        );
      },
      120_000,
    );
    // The first instance dies without a word: its leases expire and the others take its shards.
    await first.stop("SIGKILL");
    await emitting;
    await fleet.emit(3_000);
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000 });
    const statuses = await bridgeStatuses(observer);
    expect(statuses.map((status) => status.instanceId).sort()).toEqual(["scale-b", "scale-c"]);
    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect(report.missing).toEqual([]);
    expect(report.duplicated).toEqual([]);
    expect(report.orderViolations).toEqual([]);
    expect(report.sequenceViolations).toEqual([]);
    expect(report.delivered).toBe(10_000);
  }, 300_000);

  it("a machine reinstalled with the same id (a new outbox numbering from 1): every event of its second life arrives, and a control machine loses none", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 2, prefix: "reimage" });
    await startBridge("reimage");
    // 1,500 events each, then the first machine is reimaged and sends 1,500 more, numbered from 1 again.
    await fleet.emit(3_000);
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000 });
    await fleet.reinstall("reimage-000");
    await fleet.emit(3_000);
    await fleet.drained(60_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 120_000 });
    const secondLife = fleet.emitted.slice(3_000).filter((event) => event.machineId === "reimage-000");
    expect(secondLife[0]?.sequence).toBe(1);
    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect({ missing: report.missing, duplicated: report.duplicated, order: report.orderViolations }).toEqual({
      missing: [],
      duplicated: [],
      order: [],
    });
    expect(report.delivered).toBe(6_000);
    expect(report.sequenceViolations).toEqual([]);
    const statuses = await bridgeStatuses(observer);
    expect(
      statuses.flatMap((status) => status.shards).reduce((total, shard) => total + shard.duplicatesDropped, 0),
    ).toBe(0);
  }, 300_000);
});
