import { Admin, ConfigResourceTypes } from "@platformatic/kafka";
import type { TopicRole } from "../../contracts/index.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { BridgeSettings } from "../settings/bridge-settings.ts";
import { withDeadline } from "./deadline.ts";
import { kafkaClientOptions } from "./kafka-client-options.ts";

export class TopicSetupError extends Error {
  readonly code = "EDGE_BRIDGE_TOPIC_SETUP";
  constructor(message: string) {
    super(message);
    this.name = "TopicSetupError";
  }
}

interface TopicPlan {
  readonly role: TopicRole;
  readonly partitions: number;
  readonly configs: Readonly<Record<string, string>>;
  /** A setting the topic must have even when someone else created it. */
  readonly required?: Readonly<Record<string, string>>;
}

/**
 * The topics the bridge writes, and how it creates the ones that are missing. The checkpoint
 * topic must be compacted: it is where the bridge remembers how far it got, and a topic that
 * deletes old records would one day forget a quiet stream's position and bridge it all again.
 */
export function topicPlans(settings: BridgeSettings): TopicPlan[] {
  const partitions = settings.kafka.partitions;
  return [
    { role: "devices", partitions, configs: {} },
    { role: "telemetry", partitions, configs: {} },
    { role: "events", partitions, configs: {} },
    { role: "inventory", partitions, configs: { "cleanup.policy": "compact" } },
    { role: "deadLetter", partitions: 1, configs: {} },
    // One partition: a takeover reads it whole. Short segments, so compaction keeps it small.
    {
      role: "checkpoint",
      partitions: 1,
      configs: { "cleanup.policy": "compact", "segment.ms": String(3_600_000), "min.cleanable.dirty.ratio": "0.1" },
      required: { "cleanup.policy": "compact" },
    },
  ];
}

/** Creates what is missing, checks what must hold of what exists. Idempotent. */
export async function ensureTopics(settings: BridgeSettings, logger: Logger): Promise<void> {
  await withDeadline(ensureTopicsNow(settings, logger), 60_000, "setting up topics");
}

async function ensureTopicsNow(settings: BridgeSettings, logger: Logger): Promise<void> {
  const admin = new Admin(kafkaClientOptions(settings.kafka, "admin"));
  try {
    const existing = new Set(await admin.listTopics());
    for (const plan of topicPlans(settings)) {
      const name = settings.topics[plan.role];
      if (!existing.has(name)) {
        try {
          await admin.createTopics({
            topics: [name],
            partitions: plan.partitions,
            replicas: settings.kafka.replicationFactor,
            configs: Object.entries(plan.configs).map(([configName, value]) => ({ name: configName, value })),
          });
          logger.info({ topic: name, role: plan.role, partitions: plan.partitions }, "created topic");
        } catch (error) {
          // Another instance may have created it at the same moment.
          const again = new Set(await admin.listTopics());
          if (!again.has(name)) throw error;
        }
        continue;
      }
      if (!plan.required) continue;
      const [description] = await admin.describeConfigs({
        resources: [
          {
            resourceType: ConfigResourceTypes.TOPIC,
            resourceName: name,
            configurationKeys: Object.keys(plan.required),
          },
        ],
      });
      for (const [key, wanted] of Object.entries(plan.required)) {
        const actual = description?.configs.find((config) => config.name === key)?.value ?? null;
        if (!actual?.split(",").includes(wanted)) {
          throw new TopicSetupError(
            `topic ${name} (${plan.role}) has ${key}=${actual ?? "(unset)"}; it must be ${wanted}: change it (kafka-configs --alter) or name another topic with EDGE_BRIDGE_TOPIC_${plan.role.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`,
          );
        }
      }
    }
  } finally {
    await admin.close().catch(() => undefined);
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
    await withDeadline(this.#refresh(settings), 30_000, "reading topic limits");
  }

  async #refresh(settings: BridgeSettings): Promise<void> {
    const admin = new Admin(kafkaClientOptions(settings.kafka, "admin"));
    try {
      const names = Object.values(settings.topics);
      const descriptions = await admin.describeConfigs({
        resources: names.map((name) => ({
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: name,
          configurationKeys: ["max.message.bytes"],
        })),
      });
      const limits = new Map<string, number>();
      for (const description of descriptions) {
        const value = Number(description.configs.find((config) => config.name === "max.message.bytes")?.value);
        if (Number.isFinite(value) && value > 0)
          limits.set(description.resourceName, Math.min(this.#maxRecordBytes, value - BATCH_OVERHEAD_BYTES));
      }
      this.#limits = limits;
    } finally {
      await admin.close().catch(() => undefined);
    }
  }
}
