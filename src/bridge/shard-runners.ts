import type { NatsConnection } from "@nats-io/transport-node";
import { DEVICE_STATE_STREAMS } from "../contracts/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import type { NatsLink } from "../transport/index.ts";
import { DEVICES_SHARD, DeviceStore, DevicesProcessor, type presenceStreamNames } from "./devices/index.ts";
import {
  type KafkaHealth,
  kafkaClientOptions,
  type ProducerThread,
  ThreadedWriter,
  type TopicLimits,
  TransactionalProducer,
} from "./kafka/index.ts";
import { type RouterOptions, tooLargeDeadLetter } from "./records/index.ts";
import { type BridgeSettings, devicesTenantId } from "./settings/index.ts";
import { type EventShard, unpartitionedEnd } from "./shard-plan.ts";
import type { ShardProcessor } from "./shards/index.ts";
import { EventStreamProcessor, ShardRunner } from "./shards/index.ts";
import { KafkaShardStateStore } from "./state/index.ts";

export interface ShardRunnersOptions {
  readonly settings: BridgeSettings;
  /** The account's link: the devices shard keeps its store in a bucket on it. */
  readonly link: NatsLink;
  /** The system account's link, when presence reads it. */
  readonly systemLink: NatsLink | null;
  readonly presence: ReturnType<typeof presenceStreamNames>;
  readonly router: RouterOptions;
  readonly limits: TopicLimits;
  /** Every shard's producer, in one thread beside this one (kafka/producer-thread.ts). */
  readonly producerThread: ProducerThread;
  readonly kafkaHealth: KafkaHealth;
  /** Whether this instance still holds `shard`'s lease (asked before every commit). */
  readonly stillOwned: (shard: string) => boolean;
  /** Kafka refused the bridge for good. */
  readonly onFatal: (error: unknown) => void;
  /** What an event shard reads (shard-plan.ts); undefined for the devices shard. */
  readonly eventShard: (shard: string) => EventShard | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The shards this instance has run, each a ShardRunner made the first time its lease is taken
 * (and started again when it is taken again): an event stream's shard carries the stream's events
 * to Kafka (shards/event-stream-processor.ts), the devices shard keeps the devices topic
 * (devices/devices-processor.ts); each commits its batches and checkpoint in its own transactions.
 */
export class ShardRunners {
  readonly #options: ShardRunnersOptions;
  readonly #runners = new Map<string, ShardRunner>();

  constructor(options: ShardRunnersOptions) {
    this.#options = options;
  }

  get all(): readonly ShardRunner[] {
    return [...this.#runners.values()];
  }

  get(shard: string): ShardRunner | undefined {
    return this.#runners.get(shard);
  }

  /** Each shard's durable consumer name, on each stream it reads: a partition's has its own. */
  consumerName(shard: string): (stream: string) => string {
    const { group } = this.#options.settings;
    if (shard === DEVICES_SHARD) return () => `${group}-devices`;
    const event = this.#options.eventShard(shard);
    const name =
      event && event.shard !== event.stream ? `${group}-${event.shard.slice(event.stream.length + 1)}` : group;
    return () => name;
  }

  /** The subjects each stream's consumer of `shard` reads (a partition); undefined: all of it. */
  filterSubject(shard: string): (stream: string) => string | undefined {
    const filter = this.#options.eventShard(shard)?.filterSubject;
    return () => filter;
  }

  /** `shard`'s runner, made on `connection` the first time. */
  runnerFor(shard: string, connection: NatsConnection): ShardRunner {
    let runner = this.#runners.get(shard);
    if (!runner) {
      runner = this.#make(shard, connection);
      this.#runners.set(shard, runner);
    }
    return runner;
  }

  /** Stops every runner (finishing open transactions), each within `timeoutMs()` as it is then. */
  async stopAll(timeoutMs: () => number): Promise<void> {
    await Promise.all([...this.#runners.values()].map((runner) => runner.stop(timeoutMs())));
  }

  #make(shard: string, connection: NatsConnection): ShardRunner {
    const { settings, router, limits, producerThread, clock, logger } = this.#options;
    const event = this.#options.eventShard(shard);
    const predecessor = event?.predecessor ?? null;
    return new ShardRunner({
      processor: this.#processorFor(shard),
      connection,
      state: new KafkaShardStateStore({
        shard,
        checkpointTopic: settings.topics.checkpoint,
        replicas: settings.kafka.replicationFactor,
        clientOptions: () => kafkaClientOptions(settings.kafka, shard.toLowerCase()),
        ...(event && predecessor !== null
          ? {
              predecessor: {
                shard: predecessor,
                stream: event.stream,
                unpartitionedEnd: () => unpartitionedEnd(connection, event.stream),
              },
            }
          : {}),
      }),
      newWriter: () =>
        settings.kafka.producerThread
          ? new ThreadedWriter({
              thread: producerThread,
              kafka: settings.kafka,
              clientIdSuffix: shard.toLowerCase(),
              transactionalId: `${settings.group}-${shard}`,
              limitOf: (topic) => limits.forTopic(topic),
            })
          : new TransactionalProducer(
              kafkaClientOptions(settings.kafka, shard.toLowerCase()),
              `${settings.group}-${shard}`,
              (topic) => limits.forTopic(topic),
            ),
      transactionalId: `${settings.group}-${shard}`,
      consumerName: this.consumerName(shard),
      filterSubject: this.filterSubject(shard),
      maxEvents: settings.batch.maxEvents,
      lingerMs: settings.batch.lingerMs,
      logger,
      clock,
      stillOwned: () => this.#options.stillOwned(shard),
      onFatal: this.#options.onFatal,
      tooLargeDeadLetter: (message, reason) => tooLargeDeadLetter(message, router, reason),
      kafkaHealth: this.#options.kafkaHealth,
    });
  }

  #processorFor(shard: string): ShardProcessor {
    const { settings, link, systemLink, presence, router, clock, logger } = this.#options;
    const event = this.#options.eventShard(shard);
    if (event)
      return new EventStreamProcessor({
        stream: event.stream,
        name: shard,
        partitions: event.partitions,
        router,
        logger: logger.child({ shard }),
        windowIdleMs: settings.dedupeWindowIdleDays * 24 * 3_600_000,
      });
    return new DevicesProcessor({
      store: async () =>
        DeviceStore.open(link.connection as NatsConnection, `${settings.group}-devices`, logger.child({ shard })),
      devicesTopic: settings.topics.devices,
      rowContext: {
        tenantId: devicesTenantId(settings),
        organizationId: settings.organizationId ?? null,
        organizationTag: settings.organizationTag,
      },
      connectionsStream: DEVICE_STATE_STREAMS.connections,
      inventoryStream: DEVICE_STATE_STREAMS.inventory,
      presence,
      systemConnection: () => systemLink?.connection ?? null,
      defaultHeartbeatSeconds: settings.heartbeatSeconds,
      missedHeartbeats: settings.missedHeartbeats,
      identity: { trustConnectionNames: settings.trustConnectionNames },
      clock,
      logger: logger.child({ shard }),
    });
  }
}
