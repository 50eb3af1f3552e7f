import type { Clock, Logger } from "../runtime/index.ts";
import { jitteredBackoff, sleepOn } from "../runtime/index.ts";
import {
  classifyKafkaError,
  describeKafkaError,
  ensureTopics,
  type KafkaHealth,
  type TopicLimits,
  TopicSetupError,
} from "./kafka/index.ts";
import type { BridgeSettings } from "./settings/index.ts";

/**
 * The topics `shards` write, made or checked, and their record limits read: tried until Kafka
 * answers (a bridge that cannot write Kafka waits here; NATS keeps the events meanwhile), each new
 * reason logged once. A topic that is not as it must be, or a refusal Kafka will not get over, throws.
 */
export async function setUpKafka(options: {
  readonly settings: BridgeSettings;
  readonly shards: readonly string[];
  readonly limits: TopicLimits;
  readonly kafkaHealth: KafkaHealth;
  readonly clock: Clock;
  readonly logger: Logger;
}): Promise<void> {
  const { settings, logger } = options;
  const backoff = jitteredBackoff({ baseMs: 1_000, maxMs: 30_000 });
  let lastReason: string | null = null;
  for (;;) {
    try {
      await options.kafkaHealth.track(ensureTopics(settings, logger, options.shards));
      await options.limits.refresh(settings);
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
      await sleepOn(options.clock, backoff.next());
    }
  }
}
