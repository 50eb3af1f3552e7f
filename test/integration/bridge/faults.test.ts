import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { Admin, ConfigResourceTypes, IncrementalAlterConfigOperationTypes } from "@platformatic/kafka";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import { TransactionalProducer } from "../../../src/bridge/kafka/client/index.ts";
import { BridgeHeader, DEFAULT_TOPICS, EventHeader } from "../../../src/contracts/index.ts";
import {
  inventoryOf,
  type SimulatedFleet,
  startSimulatedFleet,
  telemetrySample,
} from "../../fixtures/bridge/simulated-fleet.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import {
  bridgeStatuses,
  checkExactlyOnce,
  readBridgeOutput,
  transactionsCommittedBy,
  waitForCaughtUp,
} from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { readTopic } from "../../helpers/kafka-topic-reader.ts";
import { publishRawHeaders } from "../../helpers/nats-raw-publish.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const SHARDS = EVENT_STREAMS.length + 1;
const BRIDGE_CLI = resolve(import.meta.dirname, "../../../src/bridge/cli/main.ts");

/** An event published the way an agent's outbox publishes it, with our headers. */
async function publishEvent(
  connection: NatsConnection,
  subject: string,
  body: string,
  meta: { eventId: string; sequence: number; msgId?: string; extraHeaders?: Array<[string, string]> },
): Promise<void> {
  const headers = natsHeaders();
  headers.set(EventHeader.eventId, meta.eventId);
  headers.set(EventHeader.eventType, subject.split(".").slice(2).join("."));
  headers.set(EventHeader.machineId, subject.split(".")[1] ?? "");
  headers.set(EventHeader.timestamp, new Date().toISOString());
  headers.set(EventHeader.correlationId, meta.eventId);
  headers.set(EventHeader.schemaVersion, "1");
  headers.set(EventHeader.sequence, String(meta.sequence));
  for (const [name, value] of meta.extraHeaders ?? []) headers.append(name, value);
  await jetstream(connection).publish(subject, body, { msgID: meta.msgId ?? meta.eventId, headers });
}

describe("edge-bridge: poison, duplicates, lost consumers, shutdown, oversized records", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let observer: NatsConnection;
  const bridges: BridgeProcess[] = [];
  let fleet: SimulatedFleet | undefined;

  const startBridge = async (env: Record<string, string> = {}): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess({
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_INSTANCE_ID: "faults",
      EDGE_BRIDGE_LEASE_SECONDS: "3",
      ...env,
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

  it("sends poison (not JSON, wrong schema, unknown subject) to the dead-letter topic with its reason and headers, acks it, and keeps going", async () => {
    // A subject the platform added to a stream that carries no event we know.
    const manager = await jetstreamManager(observer);
    const telemetryStream = await manager.streams.info("TELEMETRY");
    await manager.streams.update("TELEMETRY", { subjects: [...telemetryStream.config.subjects, "machine.*.mystery"] });
    await startBridge();
    await publishEvent(observer, "machine.poison-1.telemetry", "{not json", {
      eventId: "poison-not-json",
      sequence: 1,
      extraHeaders: [
        ["X-Custom", "one"],
        ["X-Custom", "two"],
      ],
    });
    await publishEvent(observer, "machine.poison-1.telemetry", JSON.stringify({ machineId: "poison-1", cpu: "hot" }), {
      eventId: "poison-schema",
      sequence: 2,
    });
    await publishEvent(observer, "machine.poison-1.mystery", JSON.stringify({ hello: "world" }), {
      eventId: "poison-subject",
      sequence: 3,
    });
    await publishEvent(observer, "machine.poison-1.telemetry", JSON.stringify(telemetrySample("poison-1", 4)), {
      eventId: "after-poison",
      sequence: 4,
    });

    const deadLetters = await waitFor(
      "three dead letters",
      async () => {
        const records = (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.deadLetter)).filter(
          (record) => record.keyText === "poison-1",
        );
        return records.length >= 3 && records;
      },
      60_000,
    );
    const byEvent = new Map(deadLetters.map((record) => [record.header(EventHeader.eventId), record]));
    expect(byEvent.get("poison-not-json")?.header(BridgeHeader.errorKind)).toBe("not-json");
    expect(byEvent.get("poison-not-json")?.value?.toString()).toBe("{not json");
    // Every value of a repeated header, in order.
    expect(
      byEvent
        .get("poison-not-json")
        ?.headers.filter(([name]) => name === "X-Custom")
        .map(([, value]) => value),
    ).toEqual(["one", "two"]);
    expect(byEvent.get("poison-schema")?.header(BridgeHeader.errorKind)).toBe("wrong-schema");
    expect(byEvent.get("poison-schema")?.header(BridgeHeader.error)).toMatch(/not a valid telemetry body/);
    expect(byEvent.get("poison-subject")?.header(BridgeHeader.errorKind)).toBe("unknown-subject");
    expect(byEvent.get("poison-subject")?.header(BridgeHeader.subject)).toBe("machine.poison-1.mystery");
    expect(byEvent.get("poison-subject")?.header(BridgeHeader.stream)).toBe("TELEMETRY");

    // Not blocked: the good event after the poison arrives, and the stream is fully acked.
    await waitFor(
      "the event after the poison",
      async () =>
        (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.telemetry)).some(
          (record) => (record.json as { eventId?: string }).eventId === "after-poison",
        ),
      30_000,
    );
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 30_000 });
    const status = (await bridgeStatuses(observer))[0];
    expect(status?.shards.find((shard) => shard.shard === "TELEMETRY")?.deadLetters).toBe(3);
    expect((await manager.consumers.info("TELEMETRY", "edge-bridge")).num_ack_pending).toBe(0);
  }, 120_000);

  it("a message whose headers the NATS client cannot read (a name with a space, sent over the raw protocol) is a dead letter, unattributed, and the stream goes on", async () => {
    await startBridge();
    const body = JSON.stringify(telemetrySample("poison-2", 1));
    await publishRawHeaders(
      nats.port,
      "machine.poison-2.telemetry",
      "NATS/1.0\r\nX-Machine-ID: poison-2\r\nBad Name: x\r\n\r\n",
      body,
    );
    await publishEvent(observer, "machine.poison-2.telemetry", JSON.stringify(telemetrySample("poison-2", 2)), {
      eventId: "after-bad-headers",
      sequence: 2,
    });
    const deadLetter = await waitFor("the dead letter", async () =>
      (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.deadLetter)).find(
        (record) => record.header(BridgeHeader.errorKind) === "unreadable-headers",
      ),
    );
    expect(deadLetter.header(BridgeHeader.error)).toMatch(/headers cannot be read: .*not a valid character/);
    expect(deadLetter.value?.toString()).toBe(body);
    expect(deadLetter.keyText).toBeNull();
    expect(deadLetter.header(BridgeHeader.subject)).toBe("machine.poison-2.telemetry");
    await waitFor("the event after it", async () =>
      (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.telemetry)).some(
        (record) => (record.json as { eventId?: string }).eventId === "after-bad-headers",
      ),
    );
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 30_000 });
    const manager = await jetstreamManager(observer);
    expect((await manager.consumers.info("TELEMETRY", "edge-bridge")).num_ack_pending).toBe(0);
  }, 120_000);

  it("drops a copy stored again outside JetStream's duplicate window (same X-Event-ID, machine and X-Sequence) and counts it", async () => {
    await startBridge();
    const body = JSON.stringify({ hostname: "dup.example" });
    await publishEvent(observer, "machine.dup-1.hostname", body, { eventId: "dup-event", sequence: 7 });
    // What a lost ack and a return after the window leaves: the same event, stored a second time.
    await publishEvent(observer, "machine.dup-1.hostname", body, {
      eventId: "dup-event",
      sequence: 7,
      msgId: "dup-event-after-window",
    });
    await publishEvent(observer, "machine.dup-1.hostname", JSON.stringify({ hostname: "next.example" }), {
      eventId: "dup-next",
      sequence: 8,
    });
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    const events = (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.events)).filter(
      (record) => record.keyText === "dup-1",
    );
    expect(events.map((record) => (record.json as { eventId: string }).eventId)).toEqual(["dup-event", "dup-next"]);
    const shard = (await bridgeStatuses(observer))[0]?.shards.find((entry) => entry.shard === "MACHINE_HOSTNAME");
    expect(shard?.duplicatesDropped).toBe(1);

    // The window is in Kafka with the output: a bridge started afresh still knows the copy.
    await bridges.splice(0)[0]?.dispose();
    await publishEvent(observer, "machine.dup-1.hostname", body, {
      eventId: "dup-event",
      sequence: 7,
      msgId: "dup-event-much-later",
    });
    await startBridge();
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    const after = (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.events)).filter(
      (record) => record.keyText === "dup-1",
    );
    expect(after).toHaveLength(2);
  }, 120_000);

  it("makes its consumer again when it is deleted under it (a server restarted without it): no silent stall", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 2, prefix: "lost-consumer" });
    await startBridge();
    await fleet.emit(200);
    await fleet.drained(30_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    const manager = await jetstreamManager(observer);
    await manager.consumers.delete("TELEMETRY", "edge-bridge");
    await fleet.emit(200);
    await fleet.drained(30_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    expect((await manager.consumers.info("TELEMETRY", "edge-bridge")).name).toBe("edge-bridge");
    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect({ missing: report.missing, duplicated: report.duplicated }).toEqual({ missing: [], duplicated: [] });
  }, 120_000);

  it("on SIGTERM commits or aborts the open transaction and exits 0 within its 10 s deadline; nothing doubled after the restart", async () => {
    fleet = await startSimulatedFleet({ connection: observer, machines: 5, prefix: "sigterm" });
    const bridge = await startBridge();
    await fleet.emit(500);
    const bridging = await waitFor(
      "bridging",
      async () => (await transactionsCommittedBy(observer, bridge.child.pid)) || false,
      60_000,
    );
    const emitting = fleet.emit(2_000);
    // Stopped while it works on the new load: it has committed again since it arrived.
    await waitFor(
      "a commit of the new load",
      async () => (await transactionsCommittedBy(observer, bridge.child.pid)) > bridging,
      60_000,
      50,
    );
    const exit = await bridge.stop("SIGTERM");
    // Past its shutdown deadline (10 s on its own monotonic clock) the bridge says so and exits 1.
    expect(exit.code, bridge.output().slice(-2_000)).toBe(0);
    expect(bridge.output()).not.toContain("shutdown took too long");
    await emitting;
    await startBridge();
    await fleet.drained(30_000);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    const report = checkExactlyOnce(fleet.emitted, await readBridgeOutput(kafka.bootstrap));
    expect({ missing: report.missing, duplicated: report.duplicated }).toEqual({ missing: [], duplicated: [] });
  }, 120_000);

  it("`edge-bridge status` shows each shard, its positions and lag over NATS; with NATS away, the status file it left", async () => {
    const bridge = await startBridge();
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000 });
    const status = async (env: Record<string, string>): Promise<{ code: number | null; stdout: string }> =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [BRIDGE_CLI, "status", ...(env.JSON ? ["--json"] : [])],
          { env: { ...process.env, EDGE_BRIDGE_DATA_DIR: bridge.dataDir, ...env } },
          (error, stdout) => resolve({ code: error ? (error.code as number) : 0, stdout }),
        );
      });
    const live = await status({ EDGE_BRIDGE_NATS_URL: nats.url, JSON: "1" });
    expect(live.code).toBe(0);
    const report = JSON.parse(live.stdout) as {
      source: string;
      instances: Array<{
        instanceId: string;
        shards: Array<{ shard: string; state: string; streams: Array<{ stream: string; lag: number }> }>;
      }>;
    };
    expect(report.source).toBe("live");
    expect(report.instances[0]?.instanceId).toBe("faults");
    expect(report.instances[0]?.shards.map((shard) => shard.shard).sort()).toEqual(
      [...EVENT_STREAMS, "devices"].sort(),
    );
    expect(report.instances[0]?.shards.find((shard) => shard.shard === "TELEMETRY")?.streams[0]).toMatchObject({
      stream: "TELEMETRY",
      lag: 0,
    });
    const human = await status({ EDGE_BRIDGE_NATS_URL: nats.url });
    expect(human.stdout).toMatch(/^instance faults \(group edge-bridge/m);
    expect(human.stdout).toMatch(/^ {2}shard TELEMETRY: running; \d+ produced/m);
    // Nobody answers on a server that is not there: the file the bridge leaves every few seconds.
    await waitFor("the status file", () => existsSync(join(bridge.dataDir, "status.json")), 20_000);
    const offline = await status({ EDGE_BRIDGE_NATS_URL: "nats://127.0.0.1:1" });
    expect(offline.code).toBe(0);
    expect(offline.stdout).toMatch(/showing .*status.json, written \d+ s ago/);
    expect(offline.stdout).toMatch(/^instance faults/m);
  }, 120_000);

  it("puts a record over its topic's size limit (the broker's max.message.bytes) into the dead-letter topic, body kept where that topic takes it", async () => {
    // A group of its own on topics of its own: it bridges the streams from their start.
    const topics = {
      devices: "big-devices",
      telemetry: "big-telemetry",
      events: "big-events",
      inventory: "big-inventory",
      deadLetter: "big-dead-letter",
      checkpoint: "big-checkpoints",
    };
    const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [kafka.bootstrap] });
    // The broker takes at most 8 KiB on the inventory topic; our own limit is the default 1 MB.
    await admin.createTopics({
      topics: [topics.inventory],
      partitions: 3,
      replicas: 1,
      configs: [
        { name: "max.message.bytes", value: "8192" },
        { name: "cleanup.policy", value: "compact" },
      ],
    });
    await admin.close();
    const huge = {
      ...inventoryOf("big-1"),
      software: Array.from({ length: 400 }, (_, index) => ({ name: `package-${index}`, version: "1.0.0" })),
    };
    await publishEvent(observer, "machine.big-1.inventory", JSON.stringify(huge), {
      eventId: "too-big-for-broker",
      sequence: 1,
    });
    await publishEvent(observer, "machine.big-1.inventory", JSON.stringify(inventoryOf("big-1")), {
      eventId: "fits",
      sequence: 2,
    });
    await startBridge({
      EDGE_BRIDGE_GROUP: "big",
      EDGE_BRIDGE_INSTANCE_ID: "big",
      EDGE_BRIDGE_TOPIC_DEVICES: topics.devices,
      EDGE_BRIDGE_TOPIC_TELEMETRY: topics.telemetry,
      EDGE_BRIDGE_TOPIC_EVENTS: topics.events,
      EDGE_BRIDGE_TOPIC_INVENTORY: topics.inventory,
      EDGE_BRIDGE_TOPIC_DEAD_LETTER: topics.deadLetter,
      EDGE_BRIDGE_TOPIC_CHECKPOINT: topics.checkpoint,
    });
    const deadLetters = await waitFor(
      "the oversized inventory as a dead letter",
      async () => {
        const records = (await readTopic(kafka.bootstrap, topics.deadLetter)).filter(
          (record) => record.keyText === "big-1",
        );
        return records.length > 0 && records;
      },
      60_000,
    );
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]?.header(EventHeader.eventId)).toBe("too-big-for-broker");
    expect(deadLetters[0]?.header(BridgeHeader.errorKind)).toBe("too-large");
    expect(deadLetters[0]?.header(BridgeHeader.error)).toMatch(/over the \d+-byte limit for topic big-inventory/);
    expect(JSON.parse(deadLetters[0]?.value?.toString() ?? "null")).toEqual(huge);
    const inventories = await waitFor(
      "the inventory that fits",
      async () => {
        const records = (await readTopic(kafka.bootstrap, topics.inventory)).filter(
          (record) => record.keyText === "big-1",
        );
        return records.length > 0 && records;
      },
      30_000,
    );
    expect(inventories.map((record) => (record.json as { eventId: string }).eventId)).toEqual(["fits"]);
  }, 120_000);

  it("an event the broker itself refuses as too large (its topic's limit lowered while the bridge runs) becomes a dead letter; the rest go through once", async () => {
    const topics = {
      devices: "shrunk-devices",
      telemetry: "shrunk-telemetry",
      events: "shrunk-events",
      inventory: "shrunk-inventory",
      deadLetter: "shrunk-dead-letter",
      checkpoint: "shrunk-checkpoints",
    };
    await startBridge({
      EDGE_BRIDGE_GROUP: "shrunk",
      EDGE_BRIDGE_INSTANCE_ID: "shrunk",
      EDGE_BRIDGE_TOPIC_DEVICES: topics.devices,
      EDGE_BRIDGE_TOPIC_TELEMETRY: topics.telemetry,
      EDGE_BRIDGE_TOPIC_EVENTS: topics.events,
      EDGE_BRIDGE_TOPIC_INVENTORY: topics.inventory,
      EDGE_BRIDGE_TOPIC_DEAD_LETTER: topics.deadLetter,
      EDGE_BRIDGE_TOPIC_CHECKPOINT: topics.checkpoint,
    });
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000, group: "shrunk" });
    // The bridge read the topic's limit at start (1 MB); it is lowered under it now.
    const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [kafka.bootstrap] });
    await admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topics.inventory,
          configs: [
            { name: "max.message.bytes", configOperation: IncrementalAlterConfigOperationTypes.SET, value: "8192" },
          ],
        },
      ],
    });
    await admin.close();
    const huge = {
      ...inventoryOf("shrunk-1"),
      software: Array.from({ length: 400 }, (_, index) => ({ name: `package-${index}`, version: "1.0.0" })),
    };
    await publishEvent(observer, "machine.shrunk-1.inventory", JSON.stringify(inventoryOf("shrunk-1")), {
      eventId: "shrunk-before",
      sequence: 1,
    });
    await publishEvent(observer, "machine.shrunk-1.inventory", JSON.stringify(huge), {
      eventId: "shrunk-too-big",
      sequence: 2,
    });
    await publishEvent(observer, "machine.shrunk-1.inventory", JSON.stringify(inventoryOf("shrunk-1")), {
      eventId: "shrunk-after",
      sequence: 3,
    });
    const deadLetters = await waitFor(
      "the refused inventory as a dead letter",
      async () => {
        const records = (await readTopic(kafka.bootstrap, topics.deadLetter)).filter(
          (record) => record.keyText === "shrunk-1",
        );
        return records.length > 0 && records;
      },
      60_000,
    );
    expect(deadLetters.map((record) => record.header(EventHeader.eventId))).toEqual(["shrunk-too-big"]);
    expect(deadLetters[0]?.header(BridgeHeader.errorKind)).toBe("too-large");
    // The broker's own answer, not the bridge's pre-check.
    expect(deadLetters[0]?.header(BridgeHeader.error)).toMatch(/MESSAGE_TOO_LARGE/);
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 60_000, group: "shrunk" });
    const inventories = (await readTopic(kafka.bootstrap, topics.inventory)).filter(
      (record) => record.keyText === "shrunk-1",
    );
    expect(inventories.map((record) => (record.json as { eventId: string }).eventId)).toEqual([
      "shrunk-before",
      "shrunk-after",
    ]);
  }, 180_000);

  it("upgrading from the shared checkpoint topic: a shard's state moves into its own topic, bridging on from the old checkpoint with the old windows, and the old topic is told where it went", async () => {
    const topics = {
      devices: "upgrade-devices",
      telemetry: "upgrade-telemetry",
      events: "upgrade-events",
      inventory: "upgrade-inventory",
      deadLetter: "upgrade-dead-letter",
      checkpoint: "upgrade-checkpoints",
    };
    // What a bridge of the layout before left: events 1 and 2 of up-1 bridged, their window, one shared topic.
    const hostname = (name: string) => JSON.stringify({ hostname: `${name}.example` });
    await publishEvent(observer, "machine.up-1.hostname", hostname("one"), { eventId: "up-1-one", sequence: 1 });
    await publishEvent(observer, "machine.up-1.hostname", hostname("two"), { eventId: "up-1-two", sequence: 2 });
    const manager = await jetstreamManager(observer);
    const stream = await manager.streams.info("MACHINE_HOSTNAME");
    const ring = Buffer.alloc(128);
    ring.writeUInt8(0b110, 0);
    const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: [kafka.bootstrap] });
    await admin.createTopics({
      topics: [topics.checkpoint],
      partitions: 1,
      replicas: 1,
      configs: [{ name: "cleanup.policy", value: "compact" }],
    });
    await admin.close();
    const legacy = new TransactionalProducer(
      { clientId: "legacy-bridge", bootstrapBrokers: [kafka.bootstrap] },
      "upgrade-MACHINE_HOSTNAME",
      () => 1_000_000,
    );
    await legacy.open();
    const legacyRecord = (key: string, value: unknown) => ({
      topic: topics.checkpoint,
      key: Buffer.from(key),
      value: Buffer.from(JSON.stringify(value)),
      headers: new Map(),
    });
    await legacy.write(
      [
        legacyRecord("dedupe/MACHINE_HOSTNAME/up-1", { high: 2, seen: ring.toString("base64") }),
        legacyRecord("checkpoint/MACHINE_HOSTNAME", {
          shard: "MACHINE_HOSTNAME",
          positions: { MACHINE_HOSTNAME: { sequence: stream.state.last_seq, streamCreated: stream.created } },
          transaction: 7,
          committedAt: new Date().toISOString(),
        }),
      ],
      Date.now(),
    );
    await legacy.close();
    // A copy of event 2 stored again after the duplicate window (an agent of before: no X-Outbox-ID), then event 3.
    await publishEvent(observer, "machine.up-1.hostname", hostname("two"), {
      eventId: "up-1-two",
      sequence: 2,
      msgId: "up-1-two-again",
    });
    await publishEvent(observer, "machine.up-1.hostname", hostname("three"), { eventId: "up-1-three", sequence: 3 });
    await startBridge({
      EDGE_BRIDGE_GROUP: "upgrade",
      EDGE_BRIDGE_INSTANCE_ID: "upgrade",
      EDGE_BRIDGE_TOPIC_DEVICES: topics.devices,
      EDGE_BRIDGE_TOPIC_TELEMETRY: topics.telemetry,
      EDGE_BRIDGE_TOPIC_EVENTS: topics.events,
      EDGE_BRIDGE_TOPIC_INVENTORY: topics.inventory,
      EDGE_BRIDGE_TOPIC_DEAD_LETTER: topics.deadLetter,
      EDGE_BRIDGE_TOPIC_CHECKPOINT: topics.checkpoint,
    });
    await waitForCaughtUp(observer, { shards: SHARDS, timeoutMs: 90_000, group: "upgrade" });
    const upEvents = (await readTopic(kafka.bootstrap, topics.events)).filter((record) => record.keyText === "up-1");
    expect(upEvents.map((record) => (record.json as { eventId: string }).eventId)).toEqual(["up-1-three"]);
    const shard = (await bridgeStatuses(observer, "upgrade"))[0]?.shards.find(
      (entry) => entry.shard === "MACHINE_HOSTNAME",
    );
    expect(shard?.duplicatesDropped).toBe(1);
    // The shard's own topic holds its checkpoint and the old window (outbox id ""); the old topic, where it went.
    const own = await readTopic(kafka.bootstrap, `${topics.checkpoint}.MACHINE_HOSTNAME`);
    expect(own.map((record) => record.keyText)).toEqual(expect.arrayContaining(["checkpoint", "dedupe/up-1/"]));
    const old = (await readTopic(kafka.bootstrap, topics.checkpoint)).filter(
      (record) => record.keyText === "checkpoint/MACHINE_HOSTNAME",
    );
    expect(old.at(-1)?.json).toEqual({ movedTo: `${topics.checkpoint}.MACHINE_HOSTNAME`, shard: "MACHINE_HOSTNAME" });
  }, 180_000);
});
