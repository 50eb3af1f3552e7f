import type { OutputRecord } from "../records/index.ts";

/**
 * What a shard writes its transactions with: in this thread (kafka/client's TransactionalProducer)
 * or in the producer thread (ThreadedWriter).
 */
export interface TransactionWriter {
  readonly transactionalId: string;
  /** Fences earlier producers of the id; resolves once this one is the only one that can commit. */
  open(): Promise<void>;
  /**
   * One transaction of `records`, each stamped `timestampMs` (the shard's clock), committed; or a
   * throw. After a throw the writer is spent: close it and take the shard over again (fence, read
   * the checkpoint) before writing anything more.
   */
  write(records: readonly OutputRecord[], timestampMs: number): Promise<void>;
  close(): Promise<void>;
}
