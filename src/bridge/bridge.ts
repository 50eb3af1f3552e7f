import type { Service } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  PARTITIONED_STREAM,
  PLATFORM_STREAMS,
  parseMachineEventSubject,
  TASK_EVENT_STREAMS,
} from "../contracts/index.ts";
import type { Logger } from "../runtime/index.ts";
import { type Cancel, type Clock, timersOf } from "../runtime/index.ts";
import { type ConnectionFactory, defaultConnectionFactory } from "../transport/index.ts";
import { openBridgeLink } from "./bridge-link.ts";
import { DEVICES_SHARD, ensurePresenceStream, presenceStreamNames } from "./devices/index.ts";
import { describeKafkaError, KafkaHealth, ProducerThread, TopicLimits } from "./kafka/index.ts";
import { setUpKafka } from "./kafka-setup.ts";
import type { RouterOptions } from "./records/index.ts";
import { type BridgeStatus, startBridgeService } from "./service/index.ts";
import type { BridgeSettings } from "./settings/index.ts";
import { type EventShard, eventShards, partitionsOfStream } from "./shard-plan.ts";
import { ShardRunners } from "./shard-runners.ts";
import { ShardLeases } from "./shards/index.ts";
import { bridgeStatusOf, writeBridgeStatusFile } from "./status-report.ts";
import { collectGarbageWhenIdle, refreshEveryMinute } from "./upkeep.ts";

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

/** The shards a bridge group runs: each event shard (shard-plan.ts), and the devices shard. */
export interface ShardPlan {
  readonly shards: readonly string[];
  readonly eventShards: ReadonlyMap<string, EventShard>;
  /** TELEMETRY's partitions (0: unpartitioned), as the stream said when the bridge started. */
  readonly partitions: number;
}

export function shardPlan(partitions: number): ShardPlan {
  const events = eventShards(EVENT_STREAMS, partitions);
  return {
    shards: [...events.map((event) => event.shard), DEVICES_SHARD],
    eventShards: new Map(events.map((event) => [event.shard, event])),
    partitions,
  };
}

/**
 * Which shards the leases balance apart (shards/shard-leases.ts): the partitions of a stream are
 * spread evenly over the instances, whatever the other shards do, since they carry its load.
 */
export function balanceClassOf(plan: ShardPlan): (shard: string) => string {
  return (shard) => {
    const event = plan.eventShards.get(shard);
    return event && event.predecessor !== null ? `${event.stream}-partitions` : "";
  };
}

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
  /**
   * A full garbage collection of this thread (runtime/full-gc.ts): given, the bridge collects its
   * threads' garbage once whenever its shards go quiet after work (the daemon gives it; V8 keeps a
   * backlog's garbage, hundreds of MB, for as long as nothing allocates).
   */
  readonly collectGarbage?: () => void;
}

/** The start's first lines: who starts, and a warning when presence trusts connection names. */
function sayStarting(settings: BridgeSettings, logger: Logger): void {
  logger.info({ group: settings.group, brokers: settings.kafka.brokers }, "edge-bridge starting");
  if (settings.trustConnectionNames)
    logger.warn(
      { setting: "trustConnectionNames" },
      "presence follows the connection names clients choose, not their authenticated identity: any client that can connect can move any machine's status; for development setups where agents share one NATS user only",
    );
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
 * One shard per event stream, one per partition of a partitioned stream (shard-plan.ts), plus the
 * devices shard (devices/devices-processor.ts); the instances of a group share the shards through
 * leases (shards/shard-leases.ts).
 */
export function createBridge(settings: BridgeSettings, deps: BridgeDeps): Bridge {
  const { logger, clock } = deps;
  const factory = deps.connectionFactory ?? defaultConnectionFactory;
  const startedAt = new Date(clock.now()).toISOString();
  const presence = presenceStreamNames(settings.group);
  const limits = new TopicLimits(settings.kafka.maxRecordBytes);
  const router: RouterOptions = { topics: settings.topics, maxRecordBytes: (topic) => limits.forTopic(topic) };
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
    endpoint: Parameters<typeof openBridgeLink>[0]["endpoint"],
    connected: (connection: NatsConnection) => void,
  ) => openBridgeLink({ name, endpoint, factory, clock, logger, connected, lost: onFatal });

  let connectionReady: (connection: NatsConnection) => void = () => undefined;
  const connected = new Promise<NatsConnection>((resolve) => (connectionReady = resolve));
  const link = openLink(`edge-bridge-${settings.instanceId}`, settings, (connection) => connectionReady(connection));
  const systemEndpoint = settings.systemAccount.natsServers
    ? { ...settings.systemAccount, natsServers: settings.systemAccount.natsServers }
    : null;
  const systemLink = systemEndpoint
    ? openLink(`edge-bridge-${settings.instanceId}-system`, systemEndpoint, () => undefined)
    : null;

  // Every shard's producer in one thread beside this one (kafka/producer-thread.ts).
  const producerThread = new ProducerThread();
  let leases: ShardLeases | null = null;
  let service: Service | null = null;
  let stopStatusFile: Cancel | null = null;
  let stopLimitsRefresh: Cancel | null = null;
  let stopIdleWatch: Cancel | null = null;
  // Until the bridge starts and reads TELEMETRY's partitioning.
  let plan = shardPlan(0);
  const runners = new ShardRunners({
    settings,
    link,
    systemLink,
    presence,
    router,
    limits,
    producerThread,
    kafkaHealth,
    stillOwned: (shard) => leases?.holds(shard) ?? false,
    onFatal,
    eventShard: (shard) => plan.eventShards.get(shard),
    clock,
    logger,
  });

  const status = (): Promise<BridgeStatus> =>
    bridgeStatusOf({
      settings,
      version: deps.version,
      pid: deps.pid,
      startedAt,
      clock,
      link,
      runners,
      kafkaHealth,
      memory: deps.memory,
      leases: () => leases,
      fatalReason: () => fatalReason,
    });
  const writeStatusFile = (): Promise<void> => writeBridgeStatusFile(settings.dataDir, status, logger);

  return {
    fatal,
    status,
    async start() {
      link.start();
      systemLink?.start();
      kafkaHealth.start();
      sayStarting(settings, logger);
      const connection = await connected;
      plan = shardPlan(await partitionsOfStream(connection));
      if (plan.partitions > 0)
        logger.info(
          { stream: PARTITIONED_STREAM, partitions: plan.partitions },
          "the stream is partitioned: a shard per partition",
        );
      // Topics first: a bridge that cannot write Kafka waits here (NATS keeps the events meanwhile).
      await setUpKafka({ settings, shards: plan.shards, limits, kafkaHealth, clock, logger });
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
        shards: [...plan.shards],
        balanceClassOf: balanceClassOf(plan),
        leaseMs: settings.leaseSeconds * 1_000,
        clock,
        logger,
        acquired: (shard) => runners.runnerFor(shard, connection).start(),
        lost: async (shard) => runners.get(shard)?.stop(7_000),
      });
      await leases.start();
      stopLimitsRefresh = refreshEveryMinute({
        settings,
        connection,
        limits,
        runningPartitions: plan.partitions,
        clock,
        logger,
      });
      if (deps.collectGarbage)
        stopIdleWatch = collectGarbageWhenIdle({
          collectGarbage: deps.collectGarbage,
          runners,
          producerThread,
          clock,
          logger,
        });
      if (deps.writeStatusFile) {
        await writeStatusFile();
        stopStatusFile = timersOf(clock).every(5_000, () => void writeStatusFile());
      }
      logger.info({ shards: leases.heldShards, liveInstances: leases.liveInstances }, "edge-bridge running");
    },
    async stop(timeoutMs) {
      stopStatusFile?.();
      stopLimitsRefresh?.();
      stopIdleWatch?.();
      const deadline = clock.monotonicMs() + timeoutMs;
      await leases?.stop();
      await runners.stopAll(() => Math.max(500, deadline - clock.monotonicMs() - 1_000));
      if (deps.writeStatusFile) await writeStatusFile();
      await producerThread.stop();
      await service?.stop().catch(() => undefined);
      await systemLink?.close(1_000);
      await link.close(Math.max(500, Math.min(2_000, deadline - clock.monotonicMs())));
      kafkaHealth.stop();
    },
  };
}
