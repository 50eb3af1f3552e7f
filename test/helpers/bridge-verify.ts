import { Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { BRIDGE_SERVICE_NAME, type BridgeStatus } from "../../src/bridge/service/bridge-status.ts";
import { DEFAULT_TOPICS } from "../../src/contracts/index.ts";
import type { EmittedRecord } from "../fixtures/bridge/simulated-fleet.ts";
import { readTopicWithKafkaConsumer } from "./kafka-oracle-reader.ts";
import type { ReadRecord } from "./kafka-topic-reader.ts";
import { waitFor } from "./wait-for.ts";

/** Every instance's status, over `$SRV.STATS.edge-bridge`. */
export async function bridgeStatuses(connection: NatsConnection, group = "edge-bridge"): Promise<BridgeStatus[]> {
  const statuses: BridgeStatus[] = [];
  const replies = await new Svcm(connection).client({ strategy: "timer", maxWait: 800 }).stats(BRIDGE_SERVICE_NAME);
  for await (const reply of replies) {
    const data = reply.endpoints?.[0]?.data as BridgeStatus | undefined;
    if (data?.group === group) statuses.push(data);
  }
  return statuses;
}

/**
 * Resolves once the group's instances together hold every shard and each has committed its
 * streams to the end (lag 0), checked twice in a row a moment apart.
 */
/** Kafka transactions the bridge process with this pid has committed, over all its shards (0 when it does not answer). */
export async function transactionsCommittedBy(connection: NatsConnection, pid: number | undefined): Promise<number> {
  const statuses = await bridgeStatuses(connection).catch(() => []);
  const own = statuses.find((status) => status.pid === pid);
  return own ? own.shards.reduce((total, shard) => total + shard.transactionsCommitted, 0) : 0;
}

export async function waitForCaughtUp(
  connection: NatsConnection,
  options: { shards: number; timeoutMs: number; group?: string },
): Promise<void> {
  let calmRounds = 0;
  let last = "";
  await waitFor(
    "the bridge to catch up",
    async () => {
      const statuses = await bridgeStatuses(connection, options.group).catch(() => []);
      const shards = statuses.flatMap((status) =>
        status.shards.filter((shard) => status.shardsHeld.includes(shard.shard)),
      );
      const running = shards.filter((shard) => shard.state === "running");
      const caughtUp =
        running.length >= options.shards && running.every((shard) => shard.streams.every((stream) => stream.lag === 0));
      last = JSON.stringify(
        shards.map((shard) => [shard.shard, shard.state, shard.streams.map((stream) => stream.lag)]),
      );
      calmRounds = caughtUp ? calmRounds + 1 : 0;
      return calmRounds >= 2;
    },
    options.timeoutMs,
    500,
  ).catch((error: unknown) => {
    throw new Error(`the bridge did not catch up within ${options.timeoutMs} ms: ${last}`, { cause: error });
  });
}

export interface BridgeOutput {
  readonly telemetry: ReadRecord[];
  readonly events: ReadRecord[];
  readonly inventory: ReadRecord[];
  readonly deadLetters: ReadRecord[];
  readonly devices: ReadRecord[];
}

/**
 * What the bridge wrote, as Kafka's own Java consumer reads it in read_committed mode (a reader
 * we did not write: test/helpers/kafka-oracle-reader.ts), so an exactly-once test does not judge
 * the bridge with the bridge's own aborted-transaction filter.
 */
export async function readBridgeOutput(bootstrap: string): Promise<BridgeOutput> {
  const [telemetry, events, inventory, deadLetters, devices] = await Promise.all([
    readTopicWithKafkaConsumer(bootstrap, DEFAULT_TOPICS.telemetry),
    readTopicWithKafkaConsumer(bootstrap, DEFAULT_TOPICS.events),
    readTopicWithKafkaConsumer(bootstrap, DEFAULT_TOPICS.inventory),
    readTopicWithKafkaConsumer(bootstrap, DEFAULT_TOPICS.deadLetter),
    readTopicWithKafkaConsumer(bootstrap, DEFAULT_TOPICS.devices),
  ]);
  return { telemetry, events, inventory, deadLetters, devices };
}

export interface ExactlyOnceReport {
  readonly emitted: number;
  readonly delivered: number;
  readonly missing: readonly string[];
  readonly duplicated: readonly string[];
  /** Out of stream order: the bridge's fault. */
  readonly orderViolations: readonly string[];
  /** Out of the device's own order: the bridge's or the agent's. */
  readonly sequenceViolations: readonly string[];
}

/**
 * Every emitted event in Kafka exactly once (by event id), and per machine, outbox life
 * (X-Outbox-ID) and source stream the device's sequence rising in partition order.
 */
export function checkExactlyOnce(emitted: readonly EmittedRecord[], everything: BridgeOutput): ExactlyOnceReport {
  // Only the records of these machines: a test file's earlier tests share the topics.
  const machines = new Set(emitted.map((event) => event.machineId));
  const mine = (records: readonly ReadRecord[]): ReadRecord[] =>
    records.filter((record) => record.keyText !== null && machines.has(record.keyText));
  const output = {
    telemetry: mine(everything.telemetry),
    events: mine(everything.events),
    inventory: mine(everything.inventory),
  };
  const records = [...output.telemetry, ...output.events, ...output.inventory];
  // Each event id, with where each of its copies is: a duplicate names them, so a failure says whether
  // one stored message was bridged twice (the same stream sequence) or the stream held two copies.
  const seen = new Map<string, string[]>();
  for (const record of records) {
    const eventId = (record.json as { eventId?: string } | null)?.eventId;
    if (!eventId) continue;
    const where = `p${record.partition}@${record.offset} ${record.header("nats-stream")}#${record.header("nats-stream-seq")}`;
    seen.set(eventId, [...(seen.get(eventId) ?? []), where]);
  }
  const missing = emitted
    .filter((event) => !seen.has(event.eventId))
    .map((event) => `${event.machineId}#${event.sequence} ${event.type}`);
  const duplicated = [...seen]
    .filter(([, copies]) => copies.length > 1)
    .map(([eventId, copies]) => `${eventId} x${copies.length} (${copies.join(", ")})`);
  // Per machine and stream, a partition holds the events in stream order, which for an agent that
  // lost nothing in transit is also its own sequence order.
  const orderViolations: string[] = [];
  const sequenceViolations: string[] = [];
  for (const topic of [output.telemetry, output.events, output.inventory]) {
    const lastStreamSequence = new Map<string, number>();
    const lastDeviceSequence = new Map<string, number>();
    for (const record of [...topic].sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : 1))) {
      const key = `${record.partition}/${record.keyText}/${record.header("X-Outbox-ID")}/${record.header("nats-stream")}`;
      const streamSequence = Number(record.header("nats-stream-seq"));
      const deviceSequence = Number(record.header("X-Sequence"));
      const previousStream = lastStreamSequence.get(key);
      const previousDevice = lastDeviceSequence.get(key);
      if (previousStream !== undefined && streamSequence <= previousStream)
        orderViolations.push(`${key}: stream sequence ${streamSequence} after ${previousStream}`);
      if (previousDevice !== undefined && deviceSequence <= previousDevice)
        sequenceViolations.push(`${key}: device sequence ${deviceSequence} after ${previousDevice}`);
      lastStreamSequence.set(key, streamSequence);
      lastDeviceSequence.set(key, deviceSequence);
    }
  }
  return {
    emitted: emitted.length,
    delivered: records.length,
    missing,
    duplicated,
    orderViolations,
    sequenceViolations,
  };
}
