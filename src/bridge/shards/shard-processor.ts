import type { NatsConnection } from "@nats-io/transport-node";
import type { OutputRecord, SourceMessage } from "../records/index.ts";
import type { CheckpointValue, StateChange } from "../state/index.ts";

/** What a processor knows when a shard is taken over: its committed position and state, from Kafka. */
export interface TakeoverContext {
  readonly checkpoint: CheckpointValue | null;
  /**
   * This shard's state records (key -> value), as last committed: parsed JSON, not yet
   * validated (the processor that owns a kind validates it, and skips what it cannot read).
   */
  readonly states: ReadonlyMap<string, unknown>;
  readonly connection: NatsConnection;
}

/** Where the shard stands around one batch: each stream's last sequence, before and after it. */
export interface BatchPositions {
  readonly committed: Readonly<Record<string, number>>;
  readonly afterBatch: Readonly<Record<string, number>>;
}

/** Counts a batch adds to the shard's statistics. */
export interface BatchCounts {
  readonly produced: number;
  readonly deadLetters: number;
  readonly duplicatesDropped: number;
  readonly unverifiableSequences: number;
}

export interface PreparedBatch {
  /** Output records, in the order they must be written. */
  readonly records: readonly OutputRecord[];
  /** Changes to this shard's state records (written to its state topic in the same transaction). */
  readonly stateChanges: readonly StateChange[];
  readonly counts: BatchCounts;
  /** The transaction committed: make the batch's state the processor's own. */
  committed(): void;
}

/**
 * The part of a shard that decides what a batch of stream messages becomes. It never writes to
 * Kafka itself: the runner puts its records, state records and the checkpoint in one transaction.
 * `prepare` must not change the processor's committed state (only `committed()` does): a failed
 * transaction is prepared again from the same state after a takeover.
 */
export interface ShardProcessor {
  readonly name: string;
  /**
   * Whether `prepare` may run while the previous batch's transaction is still open: the processor
   * then builds on its own uncommitted state, and drops it in `discardUncommitted` when that
   * transaction failed. A processor with side effects outside Kafka says false.
   */
  readonly preparesAhead: boolean;
  discardUncommitted?(): void;
  /** The streams this shard reads, each through its own consumer. */
  readonly streams: readonly string[];
  takeover(context: TakeoverContext): Promise<void>;
  prepare(messages: readonly SourceMessage[], positions: BatchPositions): Promise<PreparedBatch>;
  /** The shard is no longer ours (or the bridge stops). */
  release(): Promise<void>;
  /** Extra figures for the service's STATS (e.g. devices known). */
  stats?(): Record<string, number>;
}
