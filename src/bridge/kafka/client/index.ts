/**
 * The bridge's one way to Kafka: every call into the client library (@platformatic/kafka) and
 * every workaround of its behaviour lives behind this module, and nothing else in src/ imports the
 * library (biome.json says so). What we rely on the library and the broker to do is pinned by
 * test/integration/kafka/kafka-client-conformance.test.ts against a real broker:
 * - a producer's InitProducerId needs producerId -1 / epoch -1, or a restarted owner is fenced
 *   (transactional-producer.ts);
 * - a transaction whose batch the broker refused leaves the producer unable to write that
 *   partition again (OUT_OF_ORDER_SEQUENCE_NUMBER), and a new transaction cannot begin before the
 *   failed one's abort has ended (transactional-producer.ts);
 * - read_committed fetches hand back aborted transactions' records with the list of aborted
 *   transactions, which we filter ourselves (committed-reader.ts); the library's Consumer.fetch
 *   filters that list too, wrongly (it loses committed records), so the reader sends its Fetch
 *   through the client's connection (raw-fetch.ts);
 * - the compatibility partitioner places a key where Java's producer does;
 * - broker errors carry Kafka's error names (`apiId`) somewhere in the error tree (kafka-errors.ts
 *   reads them; it never looks at message text).
 */
export type { BaseOptions as KafkaClientOptions } from "@platformatic/kafka";
export { KafkaAdmin, type TopicSpec, withKafkaAdmin } from "./admin.ts";
export { type CommittedRecord, partitionCount, readCommittedPartition } from "./committed-reader.ts";
export { KafkaSecretFileError, kafkaClientOptions, transactionAwareRetryDelay } from "./options.ts";
export { SpentProducerError, TransactionalProducer } from "./transactional-producer.ts";
