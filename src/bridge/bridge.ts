import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DEVICE_STATE_STREAMS,
  PLATFORM_STREAMS,
  parseMachineEventSubject,
  TASK_EVENT_STREAMS,
} from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Cancel, type Clock, jitteredBackoff, sleepOn, timersOf, writeFileAtomic } from "../runtime/index.ts";
import {
  buildConnectionOptions,
  type ConnectionFactory,
  createNatsLink,
  defaultConnectionFactory,
  type NatsLink,
} from "../transport/index.ts";
import {
  DEVICES_SHARD,
  DeviceStore,
  DevicesProcessor,
  ensurePresenceStream,
  presenceStreamNames,
} from "./devices/index.ts";
import {
  classifyKafkaError,
  describeKafkaError,
  ensureTopics,
  KafkaHealth,
  kafkaClientOptions,
  ProducerThread,
  ThreadedWriter,
  TopicLimits,
  TopicSetupError,
} from "./kafka/index.ts";
import { type RouterOptions, tooLargeDeadLetter } from "./records/index.ts";
import { type BridgeStatus, shardStatus, startBridgeService } from "./service/index.ts";
import { type BridgeSettings, devicesTenantId } from "./settings/index.ts";
import type { ShardProcessor } from "./shards/index.ts";
import { EventStreamProcessor, ShardLeases, ShardRunner } from "./shards/index.ts";
import { KafkaShardStateStore } from "./state/index.ts";

/**
 * Event streams the bridge leaves in NATS: a task's output is for following it live, and its end
 * (bridged) keeps the last lines and says what was cut (DESIGN, "Remote tasks").
 */
const LEFT_IN_NATS: ReadonlySet<string> = new Set([TASK_EVENT_STREAMS.output]);

/** The streams agents publish their events on: every platform stream whose subjects are `machine.*.<event type>`. */
export const EVENT_STREAMS: readonly string[] = PLATFORM_STREAMS.filter(
  (stream) =>
    !LEFT_IN_NATS.has(stream.name) &&
    stream.subjects.every((subject) => parseMachineEventSubject(subject.replace("*", "x")) !== null),
).map((stream) => stream.name);

export const BRIDGE_STATUS_FILE = "status.json";

/** Every shard a bridge group runs: one per event stream, and the devices shard. */
export const SHARDS: readonly string[] = [...EVENT_STREAMS, DEVICES_SHARD];

export interface BridgeDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly version: string;
  readonly pid: number;
  readonly host: string;
  readonly processAlive: (pid: number) => boolean;
  /** This process's memory, for the status. */
  readonly memory: () => BridgeStatus["memory"];
  readonly connectionFactory?: ConnectionFactory;
  /** Leave a status file in the data dir every few seconds (the daemon does; tests may not). */
  readonly writeStatusFile?: boolean;
}

export interface Bridge {
  /** Connects, sets up topics and streams, and starts taking shards; resolves once it took part. */
  start(): Promise<void>;
  /** Stops every shard (finishing open transactions), gives leases back, closes connections. */
  stop(timeoutMs: number): Promise<void>;
  status(): Promise<BridgeStatus>;
  /** Resolves with the error when Kafka refuses the bridge for good: the process must stop. */
  readonly fatal: Promise<unknown>;
}

/**
 * The companion bridge: NATS JetStream -> Kafka, exactly once (shards/shard-runner.ts says how).
 * One shard per event stream, plus the devices shard (devices/devices-processor.ts); the
 * instances of a group share the shards through leases (shards/shard-leases.ts).
 */
export function createBridge(settings: BridgeSettings, deps: BridgeDeps): Bridge {
  const { logger, clock } = deps;
  const factory = deps.connectionFactory ?? defaultConnectionFactory;
  const startedAt = new Date(clock.now()).toISOString();
  const presence = presenceStreamNames(settings.group);
  const limits = new TopicLimits(settings.kafka.maxRecordBytes);
  const router: RouterOptions = { topics: settings.topics, maxRecordBytes: (topic) => limits.forTopic(topic) };
  const clientOptions = (suffix: string) => () => kafkaClientOptions(settings.kafka, suffix);
  const kafkaHealth = new KafkaHealth({
    clock,
    logger,
    brokers: settings.kafka.brokers,
    warnAfterMs: settings.kafkaUnreachableWarningSeconds * 1_000,
  });
  let reportFatal: (error: unknown) => void = () => undefined;
  const fatal = new Promise<unknown>((resolve) => (reportFatal = resolve));
  let fatalReason: string | null = null;
  const onFatal = (error: unknown): void => {
    fatalReason ??= describeKafkaError(error);
    reportFatal(error);
  };

  const openLink = (
    name: string,
    endpoint: Parameters<typeof buildConnectionOptions>[0],
    onConnected: (connection: NatsConnection) => void,
  ): NatsLink => {
    const backoff = jitteredBackoff({ baseMs: 500, maxMs: 30_000 });
    return createNatsLink({
      connectionOptions: () => buildConnectionOptions(endpoint, name, backoff),
      factory,
      logger: logger.child({ link: name }),
      clock,
      resetBackoff: () => backoff.reset(),
      nextRetryDelayMs: () => backoff.next(),
      observer: {
        connected: (_server, connection) => onConnected(connection),
        disconnected: () => undefined,
        reconnected: () => undefined,
        // Consumers, leases and the service are bound to the connection: the service manager starts us afresh.
        lost: (reason) => onFatal(new Error(`NATS connection ${name} closed for good: ${reason}`)),
      },
    });
  };

  let connectionReady: (connection: NatsConnection) => void = () => undefined;
  const connected = new Promise<NatsConnection>((resolve) => (connectionReady = resolve));
  const link = openLink(`edge-bridge-${settings.instanceId}`, settings, (connection) => connectionReady(connection));
  const systemEndpoint = settings.systemAccount.natsServers
    ? { ...settings.systemAccount, natsServers: settings.systemAccount.natsServers }
    : null;
  const systemLink = systemEndpoint
    ? openLink(`edge-bridge-${settings.instanceId}-system`, systemEndpoint, () => undefined)
    : null;

  const consumerName = (shard: string) => (_stream: string) =>
    shard === DEVICES_SHARD ? `${settings.group}-devices` : settings.group;
  const runners = new Map<string, ShardRunner>();
  // Every shard's producer in one thread beside this one (kafka/producer-thread.ts).
  const producerThread = new ProducerThread();
  let leases: ShardLeases | null = null;
  let service: Service | null = null;
  let stopStatusFile: Cancel | null = null;
  let stopLimitsRefresh: Cancel | null = null;

  const processorFor = (shard: string): ShardProcessor =>
    shard === DEVICES_SHARD
      ? new DevicesProcessor({
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
        })
      : new EventStreamProcessor({
          stream: shard,
          router,
          logger: logger.child({ shard }),
          windowIdleMs: settings.dedupeWindowIdleDays * 24 * 3_600_000,
        });

  const runnerFor = (shard: string, connection: NatsConnection): ShardRunner => {
    let runner = runners.get(shard);
    if (!runner) {
      runner = new ShardRunner({
        processor: processorFor(shard),
        connection,
        state: new KafkaShardStateStore({
          shard,
          checkpointTopic: settings.topics.checkpoint,
          replicas: settings.kafka.replicationFactor,
          clientOptions: clientOptions(shard.toLowerCase()),
        }),
        newWriter: () =>
          new ThreadedWriter({
            thread: producerThread,
            kafka: settings.kafka,
            clientIdSuffix: shard.toLowerCase(),
            transactionalId: `${settings.group}-${shard}`,
            limitOf: (topic) => limits.forTopic(topic),
          }),
        transactionalId: `${settings.group}-${shard}`,
        consumerName: consumerName(shard),
        maxEvents: settings.batch.maxEvents,
        lingerMs: settings.batch.lingerMs,
        logger,
        clock,
        stillOwned: () => leases?.holds(shard) ?? false,
        onFatal,
        tooLargeDeadLetter: (message, reason) => tooLargeDeadLetter(message, router, reason),
        kafkaHealth,
      });
      runners.set(shard, runner);
    }
    return runner;
  };

  const status = async (): Promise<BridgeStatus> => {
    const connection = link.connection;
    const shards = await Promise.all(
      [...runners.values()].map((runner) => shardStatus(connection, runner.stats(), consumerName(runner.name))),
    );
    return {
      instanceId: settings.instanceId,
      group: settings.group,
      version: deps.version,
      pid: deps.pid,
      startedAt,
      reportedAt: new Date(clock.now()).toISOString(),
      nats: {
        connected: link.state === "connected",
        server: connection && !connection.isClosed() ? connection.getServer() : null,
      },
      kafkaBrokers: settings.kafka.brokers,
      kafka: kafkaHealth.status(),
      liveInstances: leases?.liveInstances ?? 0,
      shardsHeld: leases?.heldShards ?? [],
      shards: shards.sort((a, b) => a.shard.localeCompare(b.shard)),
      fatal: fatalReason,
      memory: deps.memory(),
    };
  };

  const writeStatusFile = async (): Promise<void> => {
    try {
      await mkdir(settings.dataDir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(
        join(settings.dataDir, BRIDGE_STATUS_FILE),
        `${JSON.stringify(await status(), null, 2)}\n`,
        0o600,
      );
    } catch (error) {
      logger.warn({ err: error }, "cannot write the status file");
    }
  };

  /** Topics first: a bridge that cannot write Kafka waits here (NATS keeps the events meanwhile). */
  const setUpKafka = async (): Promise<void> => {
    const backoff = jitteredBackoff({ baseMs: 1_000, maxMs: 30_000 });
    let lastReason: string | null = null;
    for (;;) {
      try {
        await kafkaHealth.track(ensureTopics(settings, logger, SHARDS));
        await limits.refresh(settings);
        return;
      } catch (error) {
        if (error instanceof TopicSetupError || classifyKafkaError(error) === "fatal") throw error;
        const reason = describeKafkaError(error);
        if (reason !== lastReason)
          logger.warn(
            { reason, brokers: settings.kafka.brokers },
            "cannot reach Kafka to set up topics yet; retrying (events wait in NATS)",
          );
        lastReason = reason;
        await sleepOn(clock, backoff.next());
      }
    }
  };

  return {
    fatal,
    status,
    async start() {
      link.start();
      systemLink?.start();
      kafkaHealth.start();
      logger.info({ group: settings.group, brokers: settings.kafka.brokers }, "edge-bridge starting");
      if (settings.trustConnectionNames)
        logger.warn(
          { setting: "trustConnectionNames" },
          "presence follows the connection names clients choose, not their authenticated identity: any client that can connect can move any machine's status; for development setups where agents share one NATS user only",
        );
      const connection = await connected;
      await setUpKafka();
      await ensurePresenceStream(connection, presence);
      service = await startBridgeService({
        connection,
        group: settings.group,
        instanceId: settings.instanceId,
        version: deps.version,
        status,
      });
      leases = new ShardLeases({
        connection,
        bucket: `${settings.group}-leases`,
        instanceId: settings.instanceId,
        pid: deps.pid,
        host: deps.host,
        processAlive: deps.processAlive,
        shards: [...SHARDS],
        leaseMs: settings.leaseSeconds * 1_000,
        clock,
        logger,
        acquired: (shard) => runnerFor(shard, connection).start(),
        lost: async (shard) => runners.get(shard)?.stop(7_000),
      });
      await leases.start();
      // A topic's max.message.bytes may be changed while we run.
      stopLimitsRefresh = timersOf(clock).every(
        60_000,
        () =>
          void limits
            .refresh(settings)
            .catch((error: unknown) => logger.debug({ err: error }, "cannot refresh topic limits")),
      );
      if (deps.writeStatusFile) {
        await writeStatusFile();
        stopStatusFile = timersOf(clock).every(5_000, () => void writeStatusFile());
      }
      logger.info({ shards: leases.heldShards, liveInstances: leases.liveInstances }, "edge-bridge running");
    },
    async stop(timeoutMs) {
      stopStatusFile?.();
      stopLimitsRefresh?.();
      const deadline = clock.monotonicMs() + timeoutMs;
      await leases?.stop();
      await Promise.all(
        [...runners.values()].map((runner) => runner.stop(Math.max(500, deadline - clock.monotonicMs() - 1_000))),
      );
      if (deps.writeStatusFile) await writeStatusFile();
      await producerThread.stop();
      await service?.stop().catch(() => undefined);
      await systemLink?.close(1_000);
      await link.close(Math.max(500, Math.min(2_000, deadline - clock.monotonicMs())));
      kafkaHealth.stop();
    },
  };
}
