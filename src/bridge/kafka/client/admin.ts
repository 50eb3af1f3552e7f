import { Admin, type BaseOptions, ConfigResourceTypes } from "@platformatic/kafka";

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  /** -1: the broker's default.replication.factor. */
  readonly replicas: number;
  readonly configs: Readonly<Record<string, string>>;
}

/** Topic administration, as much as the bridge needs. Close it when done. */
export class KafkaAdmin {
  readonly #admin: Admin;

  constructor(clientOptions: BaseOptions) {
    this.#admin = new Admin(clientOptions);
  }

  async listTopics(): Promise<Set<string>> {
    return new Set(await this.#admin.listTopics());
  }

  /** Creates the topic; "exists" when it was there already, or another client created it at the same moment. */
  async createTopic(spec: TopicSpec): Promise<"created" | "exists"> {
    try {
      await this.#admin.createTopics({
        topics: [spec.name],
        partitions: spec.partitions,
        replicas: spec.replicas,
        configs: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
      });
      return "created";
    } catch (error) {
      if ((await this.listTopics()).has(spec.name)) return "exists";
      throw error;
    }
  }

  /** `topic -> config name -> value` (null: not set, or not known to the broker) for the names asked. */
  async topicConfigs(
    topics: readonly string[],
    keys: readonly string[],
  ): Promise<Map<string, Map<string, string | null>>> {
    const descriptions = await this.#admin.describeConfigs({
      resources: topics.map((name) => ({
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName: name,
        configurationKeys: [...keys],
      })),
    });
    const configs = new Map<string, Map<string, string | null>>();
    for (const description of descriptions) {
      const values = new Map<string, string | null>();
      for (const key of keys) values.set(key, description.configs.find((config) => config.name === key)?.value ?? null);
      configs.set(description.resourceName, values);
    }
    return configs;
  }

  /** Partitions of each topic that exists (absent ones are left out). */
  async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const existing = await this.listTopics();
    const present = topics.filter((topic) => existing.has(topic));
    const counts = new Map<string, number>();
    if (present.length === 0) return counts;
    const metadata = await this.#admin.metadata({ topics: present, forceUpdate: true });
    for (const topic of present) {
      const count = metadata.topics.get(topic)?.partitionsCount;
      if (count !== undefined) counts.set(topic, count);
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.#admin.close().catch(() => undefined);
  }
}

/** Runs `work` with an admin client that is closed afterwards, whatever happens. */
export async function withKafkaAdmin<T>(
  clientOptions: BaseOptions,
  work: (admin: KafkaAdmin) => Promise<T>,
): Promise<T> {
  const admin = new KafkaAdmin(clientOptions);
  try {
    return await work(admin);
  } finally {
    await admin.close();
  }
}
