import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EventType,
  eventHeaderEntries,
  machineSubjects,
  SCHEMA_VERSION,
  subjectFor,
} from "../../../src/contracts/index.ts";
import { telemetrySample } from "../../fixtures/bridge/simulated-fleet.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { readTopic } from "../../helpers/kafka-topic-reader.ts";
import { freeLoopbackPort } from "../../helpers/loopback-ports.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const MACHINES = 3;
const PER_MACHINE = 10;

/** One sample's value from the exposition text, by its series as written (`name{labels}`); undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((each) => each.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * The bridge's Prometheus endpoint, scraped over loopback from a real bridge process between a
 * real nats-server and Kafka: its counters follow the events it commits, a dead letter included.
 */
describe("edge-bridge metrics", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let publisher: NatsConnection;
  let bridge: BridgeProcess | null = null;

  beforeAll(async () => {
    [nats, kafka] = await Promise.all([startNatsServer(), startKafkaBroker()]);
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: nats.url });
    expect(setup.code, setup.stderr).toBe(0);
    publisher = await connect({ servers: nats.url });
  }, 120_000);

  afterAll(async () => {
    await bridge?.dispose();
    await publisher?.close();
    await kafka?.dispose();
    await nats?.dispose();
  });

  const publish = async (machineId: string, sequence: number, body: string): Promise<void> => {
    const headers = natsHeaders();
    for (const [name, value] of eventHeaderEntries({
      eventId: `${machineId}-${sequence}`,
      eventType: EventType.telemetry,
      machineId,
      timestamp: new Date().toISOString(),
      correlationId: `${machineId}-${sequence}`,
      schemaVersion: SCHEMA_VERSION,
      sequence,
    }))
      headers.set(name, value);
    await jetstream(publisher).publish(subjectFor(machineSubjects(machineId), EventType.telemetry), body, {
      headers,
      msgID: `${machineId}-${sequence}`,
    });
  };

  it("counts bridged events, transactions and a dead letter per shard, with lag and process figures", async () => {
    const port = await freeLoopbackPort();
    bridge = await startBridgeProcess({
      EDGE_BRIDGE_NATS_URL: nats.url,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_INSTANCE_ID: "metrics",
      EDGE_BRIDGE_METRICS_LISTEN: `127.0.0.1:${port}`,
    });
    const url = `http://127.0.0.1:${port}/metrics`;
    const scrape = async (): Promise<string> => {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/plain");
      return response.text();
    };
    const running = await waitFor(
      "the TELEMETRY shard running",
      async () => {
        const text = await scrape();
        return sample(text, 'edge_bridge_shard_state{shard="TELEMETRY",state="running"}') === 1 && text;
      },
      60_000,
    );
    expect(sample(running, 'edge_bridge_events_bridged_total{shard="TELEMETRY"}')).toBe(0);
    expect(sample(running, 'edge_bridge_takeovers_total{shard="TELEMETRY"}')).toBeGreaterThanOrEqual(1);
    expect(sample(running, 'edge_bridge_shard_held{shard="TELEMETRY"}')).toBe(1);
    expect(sample(running, "edge_bridge_nats_connected")).toBe(1);
    expect(sample(running, "process_resident_memory_bytes")).toBeGreaterThan(0);

    for (let sequence = 1; sequence <= PER_MACHINE; sequence++)
      for (let machine = 0; machine < MACHINES; machine++) {
        const machineId = `metrics-${machine}`;
        await publish(machineId, sequence, JSON.stringify(telemetrySample(machineId, sequence)));
      }
    // Not JSON: a dead letter, committed and counted as one.
    await publish("metrics-0", PER_MACHINE + 1, "{ not json");

    const text = await waitFor(
      "every event and the dead letter counted",
      async () => {
        const scraped = await scrape();
        return sample(scraped, 'edge_bridge_events_bridged_total{shard="TELEMETRY"}') === MACHINES * PER_MACHINE &&
          sample(scraped, 'edge_bridge_dead_letters_total{shard="TELEMETRY"}') === 1 &&
          sample(scraped, 'edge_bridge_lag_messages{shard="TELEMETRY",stream="TELEMETRY"}') === 0
          ? scraped
          : undefined;
      },
      60_000,
    );
    expect(sample(text, 'edge_bridge_transactions_committed_total{shard="TELEMETRY"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'edge_bridge_transactions_aborted_total{shard="TELEMETRY"}')).toBe(0);
    expect(sample(text, 'edge_bridge_consumer_pending_messages{shard="TELEMETRY",stream="TELEMETRY"}')).toBe(0);
    const lastCommit = sample(text, 'edge_bridge_last_commit_timestamp_seconds{shard="TELEMETRY"}') ?? 0;
    expect(lastCommit * 1000).toBeGreaterThan(Date.now() - 120_000);
    // Other shards saw nothing.
    expect(sample(text, 'edge_bridge_events_bridged_total{shard="CONFIG_STATUS"}')).toBe(0);
    // What the counters say is what Kafka holds.
    expect((await readTopic(kafka.bootstrap, "machine-telemetry")).length).toBe(MACHINES * PER_MACHINE);
    expect((await readTopic(kafka.bootstrap, "edge-bridge-dead-letter")).length).toBe(1);

    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
  });
});
