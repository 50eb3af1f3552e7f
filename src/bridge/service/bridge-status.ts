import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { type Service, Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import type { KafkaHealthStatus } from "../kafka/index.ts";
import type { ShardStats } from "../shards/index.ts";

export const BRIDGE_SERVICE_NAME = "edge-bridge";

/** One stream as a shard reads it: the bridge's position, and the consumer's and stream's view. */
export interface StreamStatus {
  readonly stream: string;
  readonly committedSequence: number;
  readonly lastSequence: number | null;
  /** Events in the stream past what is committed to Kafka. */
  readonly lag: number | null;
  /** The consumer's count of messages not yet delivered, delivered and not acked, and redelivered. */
  readonly pending: number | null;
  readonly ackPending: number | null;
  readonly redelivered: number | null;
  readonly redeliveriesDropped: number;
  readonly missingFromStream: number;
  readonly repositions: number;
}

export interface ShardStatus extends Omit<ShardStats, "streams"> {
  readonly streams: readonly StreamStatus[];
}

/** What one bridge instance reports: on `$SRV.STATS.edge-bridge`, its status endpoint and its status file. */
export interface BridgeStatus {
  readonly instanceId: string;
  readonly group: string;
  readonly version: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly reportedAt: string;
  readonly nats: { readonly connected: boolean; readonly server: string | null };
  readonly kafkaBrokers: readonly string[];
  /** Whether Kafka answers, and what is wrong when it does not (or refuses the records' timestamps). */
  readonly kafka: KafkaHealthStatus;
  readonly liveInstances: number;
  readonly shardsHeld: readonly string[];
  readonly shards: readonly ShardStatus[];
  readonly fatal: string | null;
  readonly memory: {
    readonly rssBytes: number;
    readonly heapUsedBytes: number;
    readonly heapTotalBytes: number;
    readonly externalBytes: number;
    readonly arrayBuffersBytes: number;
  };
}

/** Adds the consumer and stream figures (asked of the server) to a shard's own counters. */
export async function shardStatus(
  connection: NatsConnection | null,
  stats: ShardStats,
  consumerName: (stream: string) => string,
  /** The subjects the shard reads of each stream (a partition), undefined: all of it. */
  filterSubject: (stream: string) => string | undefined = () => undefined,
): Promise<ShardStatus> {
  const manager = connection && !connection.isClosed() ? await jetstreamManager(connection).catch(() => null) : null;
  const streams = await Promise.all(
    Object.entries(stats.streams).map(async ([stream, streamStats]): Promise<StreamStatus> => {
      const consumer = manager ? await manager.consumers.info(stream, consumerName(stream)).catch(() => null) : null;
      const filter = filterSubject(stream);
      const lastSequence = manager
        ? filter === undefined
          ? ((await manager.streams.info(stream).catch(() => null))?.state.last_seq ?? null)
          : await lastSequenceOf(manager, stream, filter)
        : null;
      return {
        stream,
        committedSequence: streamStats.committedSequence,
        lastSequence,
        lag: lastSequence === null ? null : Math.max(0, lastSequence - streamStats.committedSequence),
        pending: consumer?.num_pending ?? null,
        ackPending: consumer?.num_ack_pending ?? null,
        redelivered: consumer?.num_redelivered ?? null,
        redeliveriesDropped: streamStats.redeliveriesDropped,
        missingFromStream: streamStats.missingFromStream,
        repositions: streamStats.repositions,
      };
    }),
  );
  return { ...stats, streams };
}

/** The last sequence stored under `filter` (0: none), or null when the server does not say. */
async function lastSequenceOf(manager: JetStreamManager, stream: string, filter: string): Promise<number | null> {
  try {
    return (await manager.streams.getMessage(stream, { last_by_subj: filter }))?.seq ?? 0;
  } catch (error) {
    return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound ? 0 : null;
  }
}

/**
 * The `edge-bridge` NATS micro service: `$SRV.PING|INFO|STATS.edge-bridge` find every instance
 * of every group; STATS carries each instance's full status (the `data` of its endpoint), and
 * `edge-bridge.<group>.status.<instanceId>` answers the same on request. No queue group: every
 * instance answers for itself.
 */
export async function startBridgeService(options: {
  connection: NatsConnection;
  group: string;
  instanceId: string;
  version: string;
  status: () => Promise<BridgeStatus>;
}): Promise<Service> {
  const service = await new Svcm(options.connection).add({
    name: BRIDGE_SERVICE_NAME,
    version: options.version,
    description: "edge-bridge: NATS JetStream to Kafka, exactly once",
    metadata: { group: options.group, instanceId: options.instanceId },
    queue: "",
    statsHandler: async () => options.status(),
  });
  service.addEndpoint("status", {
    subject: `${BRIDGE_SERVICE_NAME}.${options.group}.status.${options.instanceId}`,
    handler: (error, message) => {
      if (error) return;
      options
        .status()
        .then((status) => message.respond(JSON.stringify(status)))
        .catch((failure: unknown) =>
          message.respondError(500, failure instanceof Error ? failure.message : String(failure)),
        );
    },
  });
  return service;
}
