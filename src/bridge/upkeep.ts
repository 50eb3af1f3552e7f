import type { NatsConnection } from "@nats-io/transport-node";
import { PARTITIONED_STREAM } from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Cancel, type Clock, timersOf, watchForIdle } from "../runtime/index.ts";
import type { ProducerThread, TopicLimits } from "./kafka/index.ts";
import type { BridgeSettings } from "./settings/index.ts";
import { partitionsOfStream } from "./shard-plan.ts";
import type { ShardRunners } from "./shard-runners.ts";

/** How long the shards must have committed nothing, after work, before the garbage is collected. */
const IDLE_PERIOD_MS = 10_000;

/**
 * Once a minute: a topic's max.message.bytes may be changed while the bridge runs, and the
 * partitioned stream's partition count too (a bridge reads it only when it starts, so it says once
 * that it must be restarted; the new partitions' events wait in NATS meanwhile).
 */
export function refreshEveryMinute(options: {
  readonly settings: BridgeSettings;
  readonly connection: NatsConnection;
  readonly limits: TopicLimits;
  /** The partition count this instance runs. */
  readonly runningPartitions: number;
  readonly clock: Clock;
  readonly logger: Logger;
}): Cancel {
  const { settings, connection, limits, runningPartitions, logger } = options;
  let partitionsSaid = runningPartitions;
  return timersOf(options.clock).every(60_000, () => {
    void limits
      .refresh(settings)
      .catch((error: unknown) => logger.debug({ err: error }, "cannot refresh topic limits"));
    void partitionsOfStream(connection)
      .then((partitions) => {
        if (partitions === partitionsSaid) return;
        partitionsSaid = partitions;
        logger.warn(
          { stream: PARTITIONED_STREAM, partitions, running: runningPartitions },
          "the stream's partitioning changed since this instance started: restart it to bridge the new partitions (their events wait in NATS meanwhile)",
        );
      })
      .catch((error: unknown) => logger.debug({ err: error }, "cannot read the stream's partitioning"));
  });
}

/**
 * Collects the garbage of both the bridge's threads once its shards have committed, aborted or
 * dropped nothing for IDLE_PERIOD_MS after work: V8 collects only while allocating, so a bridge idle
 * after a backlog would keep the backlog's garbage.
 */
export function collectGarbageWhenIdle(options: {
  readonly collectGarbage: () => void;
  readonly runners: ShardRunners;
  readonly producerThread: ProducerThread;
  readonly clock: Clock;
  readonly logger: Logger;
}): Cancel {
  const { runners, producerThread, logger } = options;
  return watchForIdle({
    clock: options.clock,
    periodMs: IDLE_PERIOD_MS,
    progress: () =>
      runners.all.reduce((total, runner) => {
        const stats = runner.stats();
        return total + stats.transactionsCommitted + stats.transactionsAborted + stats.duplicatesDropped;
      }, 0),
    onIdle: () => {
      options.collectGarbage();
      void producerThread
        .collectGarbage()
        .catch((error: unknown) => logger.debug({ err: error }, "cannot collect the producer thread's garbage"));
    },
  });
}
