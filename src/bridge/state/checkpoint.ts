import * as z from "zod";
import { EdgeError } from "../../errors/index.ts";

/**
 * How far a shard has bridged each of its streams, written in the same Kafka transaction as the
 * records it covers: Kafka holds the output and the position together, so they cannot disagree.
 * `streamCreated` tells a stream made again (sequences start over) from the one we read.
 */
export const StreamPosition = z.object({ sequence: z.number().int().nonnegative(), streamCreated: z.string() });
export type StreamPosition = z.infer<typeof StreamPosition>;

export const CheckpointValue = z.object({
  shard: z.string(),
  positions: z.record(z.string(), StreamPosition),
  /** Counts this shard's transactions: the n-th commit, for operators reading the topic. */
  transaction: z.number().int().nonnegative(),
  committedAt: z.string(),
});
export type CheckpointValue = z.infer<typeof CheckpointValue>;

/** A change to one of a shard's state records: its new value, or null to delete it (a tombstone). */
export interface StateChange {
  readonly key: string;
  readonly value: unknown;
}

/** The key of a shard's checkpoint in its state topic; state records' keys always hold a `/`. */
export const CHECKPOINT_KEY = "checkpoint";

/** A shard's checkpoint could not be read back: bridging on would duplicate or skip, so the shard does not. */
export class CheckpointUnreadableError extends EdgeError {
  readonly code = "EDGE_BRIDGE_CHECKPOINT_UNREADABLE";
  constructor(topic: string, detail: string, cause?: unknown) {
    super(
      `the checkpoint in ${topic} cannot be read (${detail}); the shard stays stopped rather than bridge its stream again or skip it (docs/bridge.md, "State topics")`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "CheckpointUnreadableError";
  }
}

/**
 * The shard's state was migrated out of the legacy shared topic, and its own topic has since lost
 * it (deleted, or emptied): the shard does not start from the stream's beginning on its own.
 */
export class CheckpointLostError extends EdgeError {
  readonly code = "EDGE_BRIDGE_CHECKPOINT_LOST";
  constructor(shard: string, topic: string, legacyTopic: string) {
    super(
      `shard ${shard}: its state was moved from ${legacyTopic} to ${topic}, which holds no checkpoint now; the shard stays stopped rather than bridge its whole stream again. To bridge it from the stream's start anyway, delete ${legacyTopic} (docs/bridge.md, "State topics")`,
    );
    this.name = "CheckpointLostError";
  }
}
