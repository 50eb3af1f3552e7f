import type { TopicRole } from "../../contracts/index.ts";
import { EdgeError } from "../../errors/index.ts";
import type { Logger } from "../../runtime/index.ts";
import type { BridgeSettings } from "../settings/index.ts";
import { type KafkaAdmin, kafkaClientOptions, type TopicSpec, withKafkaAdmin } from "./client/index.ts";
import { withDeadline } from "./deadline.ts";

export class TopicSetupError extends EdgeError {
  readonly code = "EDGE_BRIDGE_TOPIC_SETUP";
  constructor(message: string) {
    super(message);
    this.name = "TopicSetupError";
  }
}

interface TopicPlan {
  readonly spec: TopicSpec;
  /** Which setting names the topic, for the error that says how to name another. */
  readonly setting: string;
  /** A setting the topic must have even when someone else created it. */
  readonly required?: Readonly<Record<string, string>>;
}

/** A shard's own state topic: `<checkpoint topic>.<shard>`, e.g. edge-bridge-checkpoints.TELEMETRY. */
export function shardStateTopic(checkpointTopic: string, shard: string): string {
  return `${checkpointTopic}.${shard}`;
}

/**
 * How a shard's state topic is made: one partition (one writer, one reader), compacted (a key's
 * newest value is all a takeover needs), and small segments cleaned early, so what a takeover
 * reads stays close to one record per key (the live windows and the checkpoint) instead of
 * everything written since the last clean.
 */
export function shardStateTopicSpec(name: string, replicas: number): TopicSpec {
  return {
    name,
    partitions: 1,
    replicas,
    configs: {
      "cleanup.policy": "compact",
      "segment.bytes": String(16 * 1024 * 1024),
      "segment.ms": String(10 * 60_000),
      "min.cleanable.dirty.ratio": "0.1",
      "max.compaction.lag.ms": String(60 * 60_000),
      "delete.retention.ms": String(60 * 60_000),
    },
  };
}

const settingOfRole = (role: TopicRole): string =>
  `EDGE_BRIDGE_TOPIC_${role.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;

/**
 * The topics the bridge writes, and how it creates the ones that are missing. Each shard's state
 * topic (shardStateTopic above; state/shard-state-store.ts writes it) must be compacted: it is
 * where the shard remembers how far it got, and a topic that deletes old records would one day
 * forget a quiet stream's position and bridge it all again. The `checkpoint` setting names their common prefix (and the legacy shared
 * topic, which is no longer created: only read once, to move a shard's state out of it).
 */
export function topicPlans(settings: BridgeSettings, shards: readonly string[]): TopicPlan[] {
  const { partitions, replicationFactor: replicas } = settings.kafka;
  const output = (role: Exclude<TopicRole, "checkpoint">, topicPartitions: number, configs = {}): TopicPlan => ({
    spec: { name: settings.topics[role], partitions: topicPartitions, replicas, configs },
    setting: settingOfRole(role),
  });
  return [
    output("devices", partitions),
    output("telemetry", partitions),
    output("events", partitions),
    output("inventory", partitions, { "cleanup.policy": "compact" }),
    output("taskResults", partitions),
    output("deadLetter", 1),
    ...shards.map(
      (shard): TopicPlan => ({
        spec: shardStateTopicSpec(shardStateTopic(settings.topics.checkpoint, shard), replicas),
        setting: settingOfRole("checkpoint"),
        required: { "cleanup.policy": "compact" },
      }),
    ),
  ];
}

/** Creates what is missing, checks what must hold of what exists. Idempotent. */
/** `shards`: the shards whose state topics to make (none: the output topics only). */
export async function ensureTopics(
  settings: BridgeSettings,
  logger: Logger,
  shards: readonly string[] = [],
): Promise<void> {
  await withDeadline(
    withKafkaAdmin(kafkaClientOptions(settings.kafka, "admin"), (admin) =>
      ensureTopicsWith(admin, topicPlans(settings, shards), logger),
    ),
    60_000,
    "setting up topics",
  );
}

async function ensureTopicsWith(admin: KafkaAdmin, plans: readonly TopicPlan[], logger: Logger): Promise<void> {
  const existing = await admin.listTopics();
  const toCheck: TopicPlan[] = [];
  for (const plan of plans) {
    if (!existing.has(plan.spec.name)) {
      if ((await admin.createTopic(plan.spec)) === "created")
        logger.info({ topic: plan.spec.name, partitions: plan.spec.partitions }, "created topic");
      continue;
    }
    if (plan.required) toCheck.push(plan);
  }
  if (toCheck.length === 0) return;
  const keys = [...new Set(toCheck.flatMap((plan) => Object.keys(plan.required ?? {})))];
  const configs = await admin.topicConfigs(
    toCheck.map((plan) => plan.spec.name),
    keys,
  );
  for (const plan of toCheck) {
    for (const [key, wanted] of Object.entries(plan.required ?? {})) {
      const actual = configs.get(plan.spec.name)?.get(key) ?? null;
      if (!actual?.split(",").includes(wanted)) {
        throw new TopicSetupError(
          `topic ${plan.spec.name} has ${key}=${actual ?? "(unset)"}; it must be ${wanted}: change it (kafka-configs --alter) or name another topic with ${plan.setting}`,
        );
      }
    }
  }
}

/** Room a record batch needs besides its records (header, and a margin for record framing). */
const BATCH_OVERHEAD_BYTES = 512;

/**
 * How large a record (and a batch of them, per partition) may be on each topic: our own
 * `maxRecordBytes`, or less where the topic's `max.message.bytes` says so. Checked before
 * sending, so a record the broker would refuse becomes a dead letter with a clear reason instead
 * of failing the whole transaction.
 */
export class TopicLimits {
  readonly #maxRecordBytes: number;
  #limits = new Map<string, number>();

  constructor(maxRecordBytes: number) {
    this.#maxRecordBytes = maxRecordBytes;
  }

  forTopic(topic: string): number {
    return this.#limits.get(topic) ?? this.#maxRecordBytes;
  }

  async refresh(settings: BridgeSettings): Promise<void> {
    await withDeadline(
      withKafkaAdmin(kafkaClientOptions(settings.kafka, "admin"), async (admin) => {
        const { checkpoint: _prefix, ...outputTopics } = settings.topics;
        const configs = await admin.topicConfigs(Object.values(outputTopics), ["max.message.bytes"]);
        const limits = new Map<string, number>();
        for (const [topic, values] of configs) {
          const value = Number(values.get("max.message.bytes"));
          if (Number.isFinite(value) && value > 0)
            limits.set(topic, Math.min(this.#maxRecordBytes, value - BATCH_OVERHEAD_BYTES));
        }
        this.#limits = limits;
      }),
      30_000,
      "reading topic limits",
    );
  }
}
