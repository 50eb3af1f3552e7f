export {
  type KafkaClientOptions,
  kafkaClientOptions,
  readCommittedPartition,
  type TopicSpec,
  TransactionalProducer,
  withKafkaAdmin,
} from "./client/index.ts";
export { withDeadline } from "./deadline.ts";
export { classifyKafkaError, describeKafkaError } from "./kafka-errors.ts";
export { KafkaHealth, type KafkaHealthStatus } from "./kafka-health.ts";
export { ProducerThread, ThreadedWriter } from "./threaded-writer.ts";
export { TopicNotFoundError, tailTopic } from "./topic-tail.ts";
export { ensureTopics, shardStateTopic, shardStateTopicSpec, TopicLimits, TopicSetupError } from "./topics.ts";
export type { TransactionWriter } from "./transaction-writer.ts";
