import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { BridgeStatus, ShardStatus } from "../service/index.ts";

const SHARD_STATES: readonly ShardStatus["state"][] = [
  "starting",
  "running",
  "retrying",
  "waiting-for-stream",
  "stopped",
];

export interface BridgeMetrics {
  /** The exposition text, from the bridge's status read now. */
  render(status: BridgeStatus): Promise<string>;
  readonly contentType: string;
}

/** A shard's counters as the status has them, each with its metric's name and help. */
const SHARD_COUNTERS: ReadonlyArray<{
  readonly name: string;
  readonly help: string;
  readonly of: (shard: ShardStatus) => number;
}> = [
  {
    name: "edge_bridge_events_bridged_total",
    help: "Events committed to Kafka as records (dead letters not included), since the bridge started; rate() gives events/s.",
    of: (shard) => shard.produced,
  },
  {
    name: "edge_bridge_dead_letters_total",
    help: "Events committed to the dead-letter topic (unreadable, not the machine's own, too large), since the bridge started.",
    of: (shard) => shard.deadLetters,
  },
  {
    name: "edge_bridge_duplicates_dropped_total",
    help: "Copies of events already bridged (same machine and sequence), dropped, since the bridge started.",
    of: (shard) => shard.duplicatesDropped,
  },
  {
    name: "edge_bridge_transactions_committed_total",
    help: "Kafka transactions the shard committed, since the bridge started.",
    of: (shard) => shard.transactionsCommitted,
  },
  {
    name: "edge_bridge_transactions_aborted_total",
    help: "Kafka transactions the shard aborted or whose commit failed (their events are read again), since the bridge started.",
    of: (shard) => shard.transactionsAborted,
  },
  {
    name: "edge_bridge_takeovers_total",
    help: "Times the shard fenced its transactional id and read its checkpoint back (each start, each recovery), since the bridge started.",
    of: (shard) => shard.takeovers,
  },
];

/**
 * The bridge's Prometheus metrics, read from its status at each scrape (the status is the one
 * source: `edge-bridge status`, the NATS service and the status file say the same). The shards'
 * counters live in the shard runners and only grow while the process lives, so they are mirrored
 * here, not counted twice. Per shard: events, dead letters, transactions, takeovers, lag, last
 * commit; per instance: links, leases; and Node's process figures (prom-client's defaults: a
 * server process, unlike the agent, can afford the event-loop monitor they add).
 */
export function createBridgeMetrics(): BridgeMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, labelNames: readonly string[] = []): Gauge =>
    new Gauge({ name, help, labelNames, registers });

  const info = gauge("edge_bridge_info", "Always 1; the labels say which bridge instance this is.", [
    "version",
    "group",
    "instance_id",
  ]);
  const uptime = gauge("edge_bridge_uptime_seconds", "Seconds since this bridge instance started.");
  const natsConnected = gauge("edge_bridge_nats_connected", "1 while the NATS link is up.");
  const kafkaReachable = gauge(
    "edge_bridge_kafka_reachable",
    "0 once Kafka has not answered (or only failed) for kafkaUnreachableWarningSeconds.",
  );
  const liveInstances = gauge("edge_bridge_live_instances", "Instances of the group this one sees holding leases.");
  const held = gauge("edge_bridge_shard_held", "1 while this instance holds the shard's lease.", ["shard"]);
  const state = gauge("edge_bridge_shard_state", "1 for the shard's current state, 0 for the others.", [
    "shard",
    "state",
  ]);
  const counters = SHARD_COUNTERS.map((spec) => ({
    spec,
    metric: new Counter({ name: spec.name, help: spec.help, labelNames: ["shard"], registers }),
  }));
  const lastCommit = gauge(
    "edge_bridge_last_commit_timestamp_seconds",
    "When the shard last committed a transaction (Unix time); 0 before its first.",
    ["shard"],
  );
  const lastTakeover = gauge(
    "edge_bridge_last_takeover_seconds",
    "How long the shard's last takeover took to read its state back from Kafka.",
    ["shard"],
  );
  const lag = gauge(
    "edge_bridge_lag_messages",
    "Messages in the stream past what the shard committed to Kafka (the stream's last sequence minus the committed one).",
    ["shard", "stream"],
  );
  const pending = gauge(
    "edge_bridge_consumer_pending_messages",
    "NATS num_pending of the shard's consumer: messages the server has not delivered to the bridge yet.",
    ["shard", "stream"],
  );
  const ackPending = gauge(
    "edge_bridge_consumer_ack_pending_messages",
    "NATS num_ack_pending of the shard's consumer: delivered to the bridge, not yet committed and acked.",
    ["shard", "stream"],
  );
  let identity: string | null = null;

  /** Labels of a figure the server could not give this time are dropped, not left at an old value. */
  const setOrRemove = (metric: Gauge, labels: Record<string, string>, value: number | null): void => {
    if (value === null) metric.remove(labels);
    else metric.set(labels, value);
  };

  return {
    contentType: registry.contentType,
    async render(status) {
      const key = `${status.version}\u0000${status.group}\u0000${status.instanceId}`;
      if (identity !== key) {
        info.reset();
        info.set({ version: status.version, group: status.group, instance_id: status.instanceId }, 1);
        identity = key;
      }
      uptime.set(Math.max(0, (Date.parse(status.reportedAt) - Date.parse(status.startedAt)) / 1000));
      natsConnected.set(status.nats.connected ? 1 : 0);
      kafkaReachable.set(status.kafka.reachable ? 1 : 0);
      liveInstances.set(status.liveInstances);
      for (const shard of status.shards) {
        const labels = { shard: shard.shard };
        held.set(labels, status.shardsHeld.includes(shard.shard) ? 1 : 0);
        for (const each of SHARD_STATES) state.set({ ...labels, state: each }, shard.state === each ? 1 : 0);
        for (const { spec, metric } of counters) {
          metric.remove(labels);
          metric.inc(labels, spec.of(shard));
        }
        lastCommit.set(labels, shard.lastCommitAt === null ? 0 : Date.parse(shard.lastCommitAt) / 1000);
        setOrRemove(lastTakeover, labels, shard.lastTakeoverMs === null ? null : shard.lastTakeoverMs / 1000);
        for (const stream of shard.streams) {
          const streamLabels = { ...labels, stream: stream.stream };
          setOrRemove(lag, streamLabels, stream.lag);
          setOrRemove(pending, streamLabels, stream.pending);
          setOrRemove(ackPending, streamLabels, stream.ackPending);
        }
      }
      return registry.metrics();
    },
  };
}
