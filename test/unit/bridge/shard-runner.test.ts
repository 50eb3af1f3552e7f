import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KafkaHealth } from "../../../src/bridge/kafka/kafka-health.ts";
import { shardStateTopic } from "../../../src/bridge/kafka/topics.ts";
import type { TransactionWriter } from "../../../src/bridge/kafka/transaction-writer.ts";
import { type RouterOptions, tooLargeDeadLetter } from "../../../src/bridge/records/event-router.ts";
import type { OutputRecord } from "../../../src/bridge/records/source-message.ts";
import { EventStreamProcessor } from "../../../src/bridge/shards/event-stream-processor.ts";
import { ShardRunner } from "../../../src/bridge/shards/shard-runner.ts";
import {
  BridgeHeader,
  DEFAULT_TOPICS,
  EventHeader,
  eventHeaderEntries,
  SCHEMA_VERSION,
} from "../../../src/contracts/index.ts";
import type { Clock } from "../../../src/runtime/clock.ts";
import { fullGarbageCollector } from "../../../src/runtime/full-gc.ts";
import { InMemoryKafka, kafkaError } from "../../fixtures/bridge/in-memory-kafka.ts";
import { telemetrySample } from "../../fixtures/bridge/simulated-fleet.ts";
import { type CapturedLog, captureLog } from "../../helpers/log-capture.ts";
import { fixedWallClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const STREAM = "TELEMETRY";
const TRANSACTIONAL_ID = "test-TELEMETRY";
const CHECKPOINT_TOPIC = "test-checkpoints";
const router: RouterOptions = { topics: DEFAULT_TOPICS, maxRecordBytes: () => 1_000_000 };
/** The shard's wall clock: every record it writes carries this time. */
const SHARD_NOW = Date.parse("2026-12-01T10:00:00.000Z");
const clock: Clock = fixedWallClock(SHARD_NOW);

/** How many times each event id reached the telemetry topic. */
function deliveries(kafka: InMemoryKafka): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of kafka.records(DEFAULT_TOPICS.telemetry)) {
    const eventId = headerOf(record, EventHeader.eventId) ?? "?";
    counts.set(eventId, (counts.get(eventId) ?? 0) + 1);
  }
  return counts;
}

function headerOf(record: OutputRecord, name: string): string | undefined {
  for (const [key, value] of record.headers) if (key.toString() === name) return value.toString();
  return undefined;
}

describe("ShardRunner (a real nats-server, an in-memory Kafka)", () => {
  let nats: NatsServerHandle;
  let connection: NatsConnection;
  const runners: ShardRunner[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    connection = await connect({ servers: nats.url });
  });

  afterEach(async () => {
    await Promise.all(runners.splice(0).map((runner) => runner.stop(2_000)));
    const manager = await jetstreamManager(connection);
    await manager.streams.delete(STREAM).catch(() => undefined);
  });

  afterAll(async () => {
    await connection?.close();
    await nats?.dispose();
  });

  const makeStream = async (): Promise<void> => {
    const manager = await jetstreamManager(connection);
    await manager.streams.add({ name: STREAM, subjects: ["machine.*.telemetry"] });
  };

  /** A telemetry event as an agent's outbox publishes it. */
  const publish = async (
    machineId: string,
    sequence: number,
    options: { outboxId?: string; eventId?: string; padding?: number } = {},
  ): Promise<string> => {
    const eventId = options.eventId ?? `${machineId}-${options.outboxId ?? "none"}-${sequence}`;
    const headers = natsHeaders();
    for (const [name, value] of eventHeaderEntries({
      eventId,
      eventType: "telemetry",
      machineId,
      timestamp: new Date().toISOString(),
      correlationId: eventId,
      schemaVersion: SCHEMA_VERSION,
      sequence,
      outboxId: options.outboxId,
    }))
      headers.set(name, value);
    const body = {
      ...telemetrySample(machineId, sequence),
      errors: options.padding ? ["x".repeat(options.padding)] : [],
    };
    // A copy stored again after the stream's duplicate window carries the same ids: a msgID of
    // its own stands in for the window having passed.
    await jetstream(connection).publish(`machine.${machineId}.telemetry`, JSON.stringify(body), {
      msgID: `${eventId}-${Math.random()}`,
      headers,
    });
    return eventId;
  };

  const startRunner = (
    kafka: InMemoryKafka,
    log: CapturedLog,
    options: {
      stillOwned?: () => boolean;
      health?: KafkaHealth;
      maxEvents?: number;
      newWriter?: () => TransactionWriter;
    } = {},
  ): ShardRunner => {
    const runner = new ShardRunner({
      processor: new EventStreamProcessor({ stream: STREAM, router, logger: log.logger }),
      connection,
      newWriter: options.newWriter ?? (() => kafka.newWriter(TRANSACTIONAL_ID)),
      state: kafka.stateStore(CHECKPOINT_TOPIC, STREAM),
      transactionalId: TRANSACTIONAL_ID,
      consumerName: () => "runner-test",
      maxEvents: options.maxEvents ?? 50,
      lingerMs: 0,
      logger: log.logger,
      clock,
      stillOwned: options.stillOwned ?? (() => true),
      onFatal: () => undefined,
      tooLargeDeadLetter: (message, reason) => tooLargeDeadLetter(message, router, reason),
      ...(options.health ? { kafkaHealth: options.health } : {}),
      streamRetryMs: 50,
    });
    runners.push(runner);
    runner.start();
    return runner;
  };

  const caughtUp = (runner: ShardRunner, sequence: number) =>
    waitFor(
      `the shard committed through stream sequence ${sequence}`,
      () => runner.stats().streams[STREAM]?.committedSequence === sequence,
      20_000,
    );

  it("bridges every event exactly once, each transaction stamped with the shard's clock", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    const runner = startRunner(kafka, captureLog());
    for (let sequence = 1; sequence <= 120; sequence++) await publish("m-1", sequence, { outboxId: "life-1" });
    await caughtUp(runner, 120);
    expect([...deliveries(kafka).values()]).toEqual(Array(120).fill(1));
    expect(new Set(kafka.timestamps)).toEqual(new Set([SHARD_NOW]));
  });

  it("an idle shard keeps nothing of the batches it bridged (an idle bridge held every shard's last batch)", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    let lastWritten: WeakRef<readonly OutputRecord[]> | null = null;
    const runner = startRunner(kafka, captureLog(), {
      newWriter: () => {
        const writer = kafka.newWriter(TRANSACTIONAL_ID);
        return {
          transactionalId: writer.transactionalId,
          open: () => writer.open(),
          // The fake Kafka keeps the records, not the array a transaction was written with.
          write: (records, timestampMs) => {
            lastWritten = new WeakRef(records);
            return writer.write(records, timestampMs);
          },
          close: () => writer.close(),
        };
      },
    });
    for (let sequence = 1; sequence <= 20; sequence++) await publish("m-1", sequence, { outboxId: "life-1" });
    await caughtUp(runner, 20);
    const written = lastWritten as WeakRef<readonly OutputRecord[]> | null;
    expect(written).not.toBeNull();
    const collect = fullGarbageCollector();
    // Each look in a job of its own: a WeakRef keeps its target until the end of the job that read it.
    await waitFor("the last transaction's records to be collected", () => {
      collect();
      return written?.deref() === undefined;
    });
  });

  it("a transaction that committed though its writer saw a failure is neither lost nor doubled: the takeover reads its checkpoint", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    kafka.failNext({ kind: "fail", error: kafkaError("REQUEST_TIMED_OUT"), committed: true });
    const runner = startRunner(kafka, captureLog());
    for (let sequence = 1; sequence <= 30; sequence++) await publish("m-1", sequence, { outboxId: "life-1" });
    await caughtUp(runner, 30);
    expect(runner.stats().takeovers).toBeGreaterThanOrEqual(2);
    expect([...deliveries(kafka).values()]).toEqual(Array(30).fill(1));
  });

  it("waits for a stream that does not exist without fencing or reading Kafka, then takes it over once it is made", async () => {
    const kafka = new InMemoryKafka();
    const log = captureLog();
    let looks = 0;
    const looking = connection.subscribe(`$JS.API.STREAM.INFO.${STREAM}`, {
      callback: () => {
        looks++;
      },
    });
    const runner = startRunner(kafka, log);
    await waitFor("five looks for the stream", () => looks >= 5, 20_000);
    looking.unsubscribe();
    expect(runner.stats().state).toBe("waiting-for-stream");
    expect(runner.stats().lastError).toBe(`stream ${STREAM} does not exist`);
    expect(kafka.opens).toBe(0);
    expect(log.matching("the shard's stream does not exist")).toHaveLength(1);
    await makeStream();
    await publish("m-1", 1, { outboxId: "life-1" });
    await caughtUp(runner, 1);
    expect(kafka.opens).toBe(1);
    expect(runner.stats().state).toBe("running");
  });

  it("a transaction the broker refuses as too large: its events go again in smaller ones, the one at fault becomes a dead letter, no failed writer is written again", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    // The broker takes less than our own limit knows (a topic's max.message.bytes lowered meanwhile).
    kafka.maxRecordBytes = 20_000;
    const log = captureLog();
    const eventIds: string[] = [];
    for (let sequence = 1; sequence <= 40; sequence++)
      eventIds.push(await publish("m-1", sequence, { outboxId: "life-1", padding: sequence === 23 ? 50_000 : 0 }));
    const runner = startRunner(kafka, log, { maxEvents: 40 });
    await caughtUp(runner, 40);
    const counts = deliveries(kafka);
    expect(eventIds.filter((eventId) => counts.get(eventId) !== 1)).toEqual([eventIds[22]]);
    expect(counts.has(eventIds[22] as string)).toBe(false);
    const deadLetters = kafka.records(DEFAULT_TOPICS.deadLetter);
    expect(deadLetters.map((record) => headerOf(record, EventHeader.eventId))).toEqual([eventIds[22]]);
    expect(deadLetters.map((record) => headerOf(record, BridgeHeader.errorKind))).toEqual(["too-large"]);
    expect(kafka.writesOnSpentWriters).toBe(0);
    expect(runner.stats().deadLetters).toBe(1);
    expect(log.matching("the broker refused an event as too large")).toHaveLength(1);
    // Full-sized transactions again afterwards.
    for (let sequence = 41; sequence <= 80; sequence++) await publish("m-1", sequence, { outboxId: "life-1" });
    const before = kafka.transactions;
    await caughtUp(runner, 80);
    expect(kafka.transactions - before).toBeLessThanOrEqual(40);
  });

  it("a transaction that fails while the shard stops is logged, not dropped in silence", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    const log = captureLog();
    let release: () => void = () => undefined;
    const stopping = new Promise<void>((resolve) => (release = resolve));
    const runner = startRunner(kafka, log);
    await publish("m-1", 1, { outboxId: "life-1" });
    await caughtUp(runner, 1);
    kafka.failNext({ kind: "hang", until: stopping, error: kafkaError("NOT_COORDINATOR") });
    await publish("m-1", 2, { outboxId: "life-1" });
    await waitFor("the transaction in flight", () => kafka.writesStarted === 2);
    const stopped = runner.stop(10_000);
    release();
    await stopped;
    const lines = log.matching("the last transaction did not commit while the shard stopped");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "warn", reason: expect.stringContaining("NOT_COORDINATOR") });
  });

  it("Kafka refusing the records' timestamps (INVALID_TIMESTAMP) is said with its cause, the events held and then bridged once", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    const log = captureLog();
    const health = new KafkaHealth({ clock, logger: log.logger, brokers: ["memory:9092"], warnAfterMs: 60_000 });
    for (let attempt = 0; attempt < 3; attempt++)
      kafka.failNext({ kind: "fail", error: kafkaError("INVALID_TIMESTAMP") });
    for (let sequence = 1; sequence <= 5; sequence++) await publish("m-1", sequence, { outboxId: "life-1" });
    const runner = startRunner(kafka, log, { health });
    await waitFor("the refusal reported", () => health.status().problem !== null);
    expect(health.status().problem).toMatch(
      /INVALID_TIMESTAMP\): check this host's clock \(it says 2026-12-01T10:00:00\.000Z\)/,
    );
    expect(log.matching("Kafka refuses the records' timestamps")).toHaveLength(1);
    await caughtUp(runner, 5);
    expect(health.status().problem).toBeNull();
    expect([...deliveries(kafka).values()]).toEqual(Array(5).fill(1));
  });

  it("fenced by another owner while its lease is gone: it stops, and takes nothing over again", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    let owned = true;
    const runner = startRunner(kafka, captureLog(), { stillOwned: () => owned });
    await publish("m-1", 1, { outboxId: "life-1" });
    await caughtUp(runner, 1);
    owned = false;
    // The next owner opens the same transactional id.
    await kafka.newWriter(TRANSACTIONAL_ID).open();
    await publish("m-1", 2, { outboxId: "life-1" });
    await waitFor("the runner stopped", () => runner.stats().state === "stopped");
    expect(kafka.opens).toBe(2);
    expect(deliveries(kafka).size).toBe(1);
  });

  it("a checkpoint it cannot read stops the shard's bridging with a clear error, not a start from the stream's beginning", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    const writer = kafka.newWriter("someone-else");
    await writer.open();
    await writer.write(
      [
        {
          topic: shardStateTopic(CHECKPOINT_TOPIC, STREAM),
          key: Buffer.from("checkpoint"),
          value: Buffer.from('{"shard":"TELEMETRY","positions":7}'),
          headers: new Map(),
        },
      ],
      SHARD_NOW,
    );
    await publish("m-1", 1, { outboxId: "life-1" });
    const runner = startRunner(kafka, captureLog());
    await waitFor("the refusal", () => runner.stats().lastError?.includes("cannot be read"));
    expect(runner.stats().state).toBe("retrying");
    expect(deliveries(kafka).size).toBe(0);
  });

  it("state records it cannot read (not JSON, or not a window) are skipped and counted: the takeover goes on", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    const writer = kafka.newWriter("someone-else");
    await writer.open();
    const stateTopic = shardStateTopic(CHECKPOINT_TOPIC, STREAM);
    await writer.write(
      [
        {
          topic: stateTopic,
          key: Buffer.from("dedupe/m-1/life-1"),
          value: Buffer.from("{not json"),
          headers: new Map(),
        },
        {
          topic: stateTopic,
          key: Buffer.from("dedupe/m-2/life-1"),
          value: Buffer.from('{"high":"x"}'),
          headers: new Map(),
        },
      ],
      SHARD_NOW,
    );
    const log = captureLog();
    const runner = startRunner(kafka, log);
    await publish("m-1", 1, { outboxId: "life-1" });
    await publish("m-2", 1, { outboxId: "life-1" });
    await caughtUp(runner, 2);
    expect(deliveries(kafka).size).toBe(2);
    expect(runner.stats().processor.unreadableStates).toBe(1);
    expect(log.matching("dedupe windows in the state topic that cannot be read")).toHaveLength(1);
  });

  it("a machine reinstalled with the same id (a new outbox, numbering from 1 again) has all its events bridged; copies of either life are still dropped, also after a takeover", async () => {
    await makeStream();
    const kafka = new InMemoryKafka();
    const log = captureLog();
    const first = startRunner(kafka, log);
    const firstLife: string[] = [];
    const secondLife: string[] = [];
    const control: string[] = [];
    for (let sequence = 1; sequence <= 150; sequence++) {
      firstLife.push(await publish("reimaged", sequence, { outboxId: "life-1" }));
      control.push(await publish("control", sequence, { outboxId: "control-life" }));
    }
    await caughtUp(first, 300);
    // Reinstalled: a new outbox life numbers from 1 again.
    for (let sequence = 1; sequence <= 150; sequence++)
      secondLife.push(await publish("reimaged", sequence, { outboxId: "life-2" }));
    await caughtUp(first, 450);
    await first.stop(5_000);
    // A new owner (the windows read back from the state topic) gets copies of both lives.
    const second = startRunner(kafka, log);
    for (const sequence of [140, 150]) await publish("reimaged", sequence, { outboxId: "life-1" });
    for (const sequence of [1, 150]) await publish("reimaged", sequence, { outboxId: "life-2" });
    await publish("control", 151, { outboxId: "control-life" });
    await caughtUp(second, 455);
    const counts = deliveries(kafka);
    expect([...firstLife, ...secondLife, ...control].filter((eventId) => counts.get(eventId) !== 1)).toEqual([]);
    expect(second.stats().duplicatesDropped).toBe(4);
    expect(log.matching("dropped a copy of an event already bridged")).toHaveLength(4);
  });
});
