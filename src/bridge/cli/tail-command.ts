import { CommandError, ExitCode } from "../../cli-kit/index.ts";
import { didYouMean } from "../../runtime/index.ts";
import { kafkaClientOptions, TopicNotFoundError, tailTopic } from "../kafka/index.ts";
import type { BridgeSettings } from "../settings/index.ts";

/**
 * `edge-bridge tail <topic> [--follow | --from-end]`: what the bridge wrote to a Kafka topic, as
 * read_committed readers (Pinot, OpenFrame's services) see it, one JSON line per record with its
 * key, partition, offset, timestamp and headers. Until the end as it stands, or (`--follow`) on
 * until the signal aborts.
 */
export async function tailCommand(
  settings: BridgeSettings,
  topic: string | undefined,
  options: { readonly follow: boolean; readonly fromEnd: boolean; readonly signal: AbortSignal },
  print: (line: string) => void,
): Promise<void> {
  const topics = Object.values(settings.topics);
  if (!topic)
    throw new CommandError(
      `tail needs a topic: edge-bridge tail TOPIC (the bridge's: ${topics.join(", ")})`,
      ExitCode.badSettings,
    );
  try {
    await tailTopic(kafkaClientOptions(settings.kafka, "tail"), topic, options, (line) => print(JSON.stringify(line)));
  } catch (error) {
    if (error instanceof TopicNotFoundError)
      throw new CommandError(
        `${error.message} on ${settings.kafka.brokers.join(",")}${didYouMean(topic, topics, (name) => JSON.stringify(name))} (the bridge's topics: ${topics.join(", ")})`,
        ExitCode.badSettings,
        { cause: error },
      );
    throw error;
  }
}
