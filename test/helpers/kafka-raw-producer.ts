import { type BaseOptions, compatibilityPartitioner, ProduceAcks, Producer } from "@platformatic/kafka";

/**
 * A transactional producer as the client library makes it, configured as the bridge's own is
 * (src/bridge/kafka/client/transactional-producer.ts says why each option): producer id -1 so a
 * new owner of the id is not fenced, no client retries, every replica's ack, Java's partitioner.
 * For tests that write transactions by hand (aborted ones, owners fenced) rather than through ours.
 */
export function rawTransactionalProducer(options: BaseOptions, transactionalId: string): Producer {
  return new Producer({
    ...options,
    transactionalId,
    producerId: -1n,
    producerEpoch: -1,
    idempotent: true,
    retries: 0,
    acks: ProduceAcks.ALL,
    partitioner: compatibilityPartitioner,
  });
}
