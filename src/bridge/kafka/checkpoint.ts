import type { BaseOptions } from "@platformatic/kafka";
import * as z from "zod";
import type { OutputRecord } from "../records/source-message.ts";
import { readCommittedPartition } from "./committed-reader.ts";
import { withDeadline } from "./deadline.ts";

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

/** A shard's state records live beside its checkpoint, keyed `<kind>/<shard>/<id>`. */
const CHECKPOINT_KEY_PREFIX = "checkpoint/";
export const checkpointKey = (shard: string): string => `${CHECKPOINT_KEY_PREFIX}${shard}`;
export const stateKey = (kind: string, shard: string, id: string): string => `${kind}/${shard}/${id}`;

export function checkpointRecord(topic: string, value: CheckpointValue): OutputRecord {
  return {
    topic,
    key: Buffer.from(checkpointKey(value.shard)),
    value: Buffer.from(JSON.stringify(value)),
    headers: new Map(),
  };
}

export function stateRecord(topic: string, kind: string, shard: string, id: string, value: unknown): OutputRecord {
  return {
    topic,
    key: Buffer.from(stateKey(kind, shard, id)),
    value: Buffer.from(JSON.stringify(value)),
    headers: new Map(),
  };
}

export interface LoadedShardState {
  readonly checkpoint: CheckpointValue | null;
  /** `<kind>/<id>` -> the newest committed value, for this shard's state records. */
  readonly states: ReadonlyMap<string, unknown>;
}

/**
 * The newest committed checkpoint of a shard and its state records. Called after the shard's
 * producer fenced any previous owner, so no transaction of this shard is still open: what is read
 * is final. The topic is compacted, so this reads roughly one record per key.
 */
export async function loadShardState(
  clientOptions: BaseOptions,
  topic: string,
  shard: string,
): Promise<LoadedShardState> {
  let checkpoint: CheckpointValue | null = null;
  const states = new Map<string, unknown>();
  const ownKey = checkpointKey(shard);
  await withDeadline(
    readCommittedPartition(clientOptions, topic, 0, 0n, (record) => {
      const key = record.key?.toString("utf8");
      if (key === undefined) return;
      if (key === ownKey) {
        if (record.value === null) return;
        checkpoint = CheckpointValue.parse(JSON.parse(record.value.toString("utf8")));
        return;
      }
      const [kind, recordShard, ...rest] = key.split("/");
      if (recordShard !== shard || kind === undefined || kind === "checkpoint" || rest.length === 0) return;
      const id = `${kind}/${rest.join("/")}`;
      if (record.value === null) states.delete(id);
      else states.set(id, JSON.parse(record.value.toString("utf8")) as unknown);
    }),
    60_000,
    `reading the checkpoint of shard ${shard}`,
  );
  return { checkpoint, states };
}
