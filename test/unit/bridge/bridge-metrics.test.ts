import { describe, expect, it } from "vitest";
import { createBridgeMetrics } from "../../../src/bridge/metrics/bridge-metrics.ts";
import type { BridgeStatus, ShardStatus } from "../../../src/bridge/service/bridge-status.ts";

const shard = (name: string, overrides: Partial<ShardStatus> = {}): ShardStatus => ({
  shard: name,
  state: "running",
  transactionalId: `edge-bridge-${name}`,
  produced: 0,
  deadLetters: 0,
  duplicatesDropped: 0,
  unverifiableSequences: 0,
  transactionsCommitted: 0,
  transactionsAborted: 0,
  takeovers: 1,
  lastTakeoverMs: 250,
  lastTakeoverBytes: 10,
  lastCommitAt: null,
  lastError: null,
  processor: {},
  streams: [
    {
      stream: name,
      committedSequence: 0,
      lastSequence: 0,
      lag: 0,
      pending: 0,
      ackPending: 0,
      redelivered: 0,
      redeliveriesDropped: 0,
      missingFromStream: 0,
      repositions: 0,
    },
  ],
  ...overrides,
});

const status = (shards: ShardStatus[]): BridgeStatus => ({
  instanceId: "i-1",
  group: "edge-bridge",
  version: "1.2.3",
  pid: 1,
  startedAt: "2026-12-07T10:00:00.000Z",
  reportedAt: "2026-12-07T10:01:30.000Z",
  nats: { connected: true, server: "127.0.0.1:4222" },
  kafkaBrokers: ["127.0.0.1:9092"],
  kafka: { reachable: true, unreachableSince: null, problem: null },
  liveInstances: 1,
  shardsHeld: shards.map((each) => each.shard),
  shards,
  fatal: null,
  memory: { rssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0, arrayBuffersBytes: 0 },
});

/** The value of one sample, by its name and labels as the exposition writes them. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((each) => each.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe("bridge metrics", () => {
  it("mirror each shard's counters as they are at each scrape, never adding them up twice", async () => {
    const metrics = createBridgeMetrics();
    await metrics.render(status([shard("TELEMETRY", { produced: 10, transactionsCommitted: 2 })]));
    const text = await metrics.render(
      status([
        shard("TELEMETRY", {
          produced: 25,
          deadLetters: 1,
          transactionsCommitted: 4,
          transactionsAborted: 1,
          takeovers: 2,
          lastCommitAt: "2026-12-07T10:01:00.000Z",
        }),
      ]),
    );
    expect(sample(text, 'edge_bridge_events_bridged_total{shard="TELEMETRY"}')).toBe(25);
    expect(sample(text, 'edge_bridge_dead_letters_total{shard="TELEMETRY"}')).toBe(1);
    expect(sample(text, 'edge_bridge_transactions_committed_total{shard="TELEMETRY"}')).toBe(4);
    expect(sample(text, 'edge_bridge_transactions_aborted_total{shard="TELEMETRY"}')).toBe(1);
    expect(sample(text, 'edge_bridge_takeovers_total{shard="TELEMETRY"}')).toBe(2);
    expect(sample(text, 'edge_bridge_last_commit_timestamp_seconds{shard="TELEMETRY"}')).toBe(
      Date.parse("2026-12-07T10:01:00.000Z") / 1000,
    );
    expect(sample(text, 'edge_bridge_last_takeover_seconds{shard="TELEMETRY"}')).toBe(0.25);
    expect(sample(text, 'edge_bridge_shard_state{shard="TELEMETRY",state="running"}')).toBe(1);
    expect(sample(text, 'edge_bridge_shard_state{shard="TELEMETRY",state="retrying"}')).toBe(0);
    expect(sample(text, 'edge_bridge_info{version="1.2.3",group="edge-bridge",instance_id="i-1"}')).toBe(1);
    expect(sample(text, "edge_bridge_uptime_seconds")).toBe(90);
    expect(text).toContain("process_resident_memory_bytes");
  });

  it("give each stream's lag and the consumer's pending counts; a figure the server did not give is left out, not kept stale", async () => {
    const metrics = createBridgeMetrics();
    const lagging = shard("EVENTS");
    const withLag = {
      ...lagging,
      streams: [{ ...(lagging.streams[0] as ShardStatus["streams"][number]), lag: 40, pending: 30, ackPending: 10 }],
    };
    const first = await metrics.render(status([withLag]));
    expect(sample(first, 'edge_bridge_lag_messages{shard="EVENTS",stream="EVENTS"}')).toBe(40);
    expect(sample(first, 'edge_bridge_consumer_pending_messages{shard="EVENTS",stream="EVENTS"}')).toBe(30);
    expect(sample(first, 'edge_bridge_consumer_ack_pending_messages{shard="EVENTS",stream="EVENTS"}')).toBe(10);
    const unknown = {
      ...lagging,
      streams: [
        { ...(lagging.streams[0] as ShardStatus["streams"][number]), lag: null, pending: null, ackPending: null },
      ],
    };
    const second = await metrics.render(status([unknown]));
    expect(sample(second, 'edge_bridge_lag_messages{shard="EVENTS",stream="EVENTS"}')).toBeUndefined();
    expect(sample(second, 'edge_bridge_consumer_pending_messages{shard="EVENTS",stream="EVENTS"}')).toBeUndefined();
  });
});
