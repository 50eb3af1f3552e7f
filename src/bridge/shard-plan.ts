import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  PARTITIONED_STREAM,
  partitionFilter,
  partitionsOfTransform,
  UNPARTITIONED_FILTER,
} from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";

/** What one event shard reads, and from where it starts the first time (DESIGN, "Partitioned telemetry"). */
export interface EventShard {
  readonly shard: string;
  readonly stream: string;
  /** The stream's subjects this shard reads (one partition, or what was stored before partitioning); undefined: all. */
  readonly filterSubject: string | undefined;
  /** The stream's partition count when this shard reads one partition; 0 otherwise. */
  readonly partitions: number;
  /** A partition: the stream's own shard, whose unpartitioned messages it waits for, and whose state it starts from. */
  readonly predecessor: string | null;
}

/** TELEMETRY's shard for partition 2 of 4: `TELEMETRY-p2-of-4` (also its state topic's and transactional id's end). */
export function partitionShardName(stream: string, partition: number, partitions: number): string {
  return `${stream}-p${partition}-of-${partitions}`;
}

/**
 * The event shards of a bridge group: one per event stream, and for a partitioned stream one
 * more per partition. The stream's own shard then reads only what the stream stored before it was
 * partitioned (`machine.<id>.<type>`), which each partition waits for (state/shard-state-store.ts).
 * The stream's own shard is always filtered to those subjects: a bridge that has not yet seen the
 * partitioning (it learns it when it starts) leaves the partitioned messages in NATS rather than
 * misread them.
 */
export function eventShards(eventStreams: readonly string[], partitions: number): EventShard[] {
  return eventStreams.flatMap((stream): EventShard[] => {
    if (stream !== PARTITIONED_STREAM)
      return [{ shard: stream, stream, filterSubject: undefined, partitions: 0, predecessor: null }];
    const own: EventShard = {
      shard: stream,
      stream,
      filterSubject: UNPARTITIONED_FILTER,
      partitions: 0,
      predecessor: null,
    };
    const parts = Array.from(
      { length: partitions },
      (_, partition): EventShard => ({
        shard: partitionShardName(stream, partition, partitions),
        stream,
        filterSubject: partitionFilter(partitions, partition),
        partitions,
        predecessor: stream,
      }),
    );
    return [own, ...parts];
  });
}

/** TELEMETRY has a subject transform the bridge does not know: what its stored subjects mean is unknown. */
export class UnknownPartitioningError extends EdgeError {
  readonly code = "EDGE_BRIDGE_UNKNOWN_PARTITIONING";
  constructor(stream: string, transform: unknown) {
    super(
      `stream ${stream} has the subject transform ${JSON.stringify(transform)}, which is not a partitioning of edge-agent's (docs/bridge.md, "Partitioned telemetry"): remove it, or partition the stream with edge-agent dev-setup`,
    );
    this.name = "UnknownPartitioningError";
  }
}

/**
 * TELEMETRY's partition count, from the stream's own configuration (no setting to keep equal to
 * it): 0 when it is unpartitioned or does not exist yet. Read once when the bridge starts.
 */
export async function partitionsOfStream(connection: NatsConnection): Promise<number> {
  const manager = await jetstreamManager(connection);
  let info: StreamInfo;
  try {
    info = await manager.streams.info(PARTITIONED_STREAM);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return 0;
    throw error;
  }
  const partitions = partitionsOfTransform(info.config.subject_transform);
  if (partitions === null) throw new UnknownPartitioningError(PARTITIONED_STREAM, info.config.subject_transform);
  return partitions;
}

/**
 * Where `stream` stands for its partitions' predecessor: the last sequence still stored under the
 * subjects it had before it was partitioned (0: none), and when it was made.
 */
export async function unpartitionedEnd(
  connection: NatsConnection,
  stream: string,
): Promise<{ lastSequence: number; streamCreated: string }> {
  const manager = await jetstreamManager(connection);
  const { created } = await manager.streams.info(stream);
  let lastSequence = 0;
  try {
    lastSequence = (await manager.streams.getMessage(stream, { last_by_subj: UNPARTITIONED_FILTER }))?.seq ?? 0;
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.NoMessageFound) throw error;
  }
  return { lastSequence, streamCreated: created };
}
