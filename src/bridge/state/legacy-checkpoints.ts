import * as z from "zod";
import { LegacyRingSnapshot, outboxLifeKey, windowFromLegacyRing, windowStateKey } from "../dedupe/index.ts";
import { type KafkaClientOptions, readCommittedPartition } from "../kafka/index.ts";
import type { OutputRecord } from "../records/index.ts";
import { CheckpointUnreadableError, CheckpointValue } from "./checkpoint.ts";

/**
 * The layout before per-shard state topics: one single-partition topic (the `checkpoint` topic
 * setting, edge-bridge-checkpoints) held every shard's checkpoint (`checkpoint/<shard>`) and
 * dedupe windows (`dedupe/<shard>/<machineId>`, a bit ring). It is only read, once per shard, when
 * the shard's own topic has no checkpoint yet: the shard's first transaction then writes its
 * state into its own topic and replaces `checkpoint/<shard>` here with a marker saying where it
 * went. A bridge of the old layout that takes the shard afterwards cannot read that marker as a
 * checkpoint and bridges nothing of the shard (no loss, no duplicate) until it is upgraded.
 */
export const LegacyMovedMarker = z.object({ movedTo: z.string(), shard: z.string() });

export type LegacyShardState =
  | { readonly kind: "none" }
  | { readonly kind: "moved"; readonly movedTo: string }
  | {
      readonly kind: "state";
      readonly checkpoint: CheckpointValue;
      /** In today's form: `dedupe/<machineId>/` (no outbox id: the old windows knew none) -> window record. */
      readonly states: ReadonlyMap<string, unknown>;
      readonly unreadable: number;
      readonly bytesRead: number;
    };

const legacyCheckpointKey = (shard: string): string => `checkpoint/${shard}`;

export async function readLegacyShardState(
  clientOptions: KafkaClientOptions,
  topic: string,
  shard: string,
): Promise<LegacyShardState> {
  const checkpointKey = legacyCheckpointKey(shard);
  const windowPrefix = `dedupe/${shard}/`;
  let checkpointValue: Buffer | null = null;
  const windows = new Map<string, Buffer | null>();
  let bytesRead = 0;
  await readCommittedPartition(clientOptions, topic, 0, 0n, (record) => {
    bytesRead += (record.key?.length ?? 0) + (record.value?.length ?? 0);
    const key = record.key?.toString("utf8");
    if (key === checkpointKey) checkpointValue = record.value;
    else if (key?.startsWith(windowPrefix)) windows.set(key.slice(windowPrefix.length), record.value);
  });
  if (checkpointValue === null) return { kind: "none" };
  let json: unknown;
  try {
    json = JSON.parse((checkpointValue as Buffer).toString("utf8"));
  } catch (error) {
    throw new CheckpointUnreadableError(topic, `${checkpointKey} is not JSON`, error);
  }
  const moved = LegacyMovedMarker.safeParse(json);
  if (moved.success) return { kind: "moved", movedTo: moved.data.movedTo };
  const checkpoint = CheckpointValue.safeParse(json);
  if (!checkpoint.success) throw new CheckpointUnreadableError(topic, `${checkpointKey} is not a checkpoint`);
  // The old windows carry no time of their own: the checkpoint's is the closest known.
  const lastAtMs = Math.max(0, Date.parse(checkpoint.data.committedAt) || 0);
  const states = new Map<string, unknown>();
  let unreadable = 0;
  for (const [machineId, value] of windows) {
    if (value === null) continue;
    let ring: LegacyRingSnapshot;
    try {
      ring = LegacyRingSnapshot.parse(JSON.parse(value.toString("utf8")));
    } catch {
      unreadable++;
      continue;
    }
    const window = windowFromLegacyRing(ring);
    if (window.high === 0) continue;
    states.set(windowStateKey(outboxLifeKey(machineId, null)), { ...window.snapshot(), lastAtMs });
  }
  return { kind: "state", checkpoint: checkpoint.data, states, unreadable, bytesRead };
}

/** Replaces the shard's legacy checkpoint: where its state went. */
export function legacyMovedMarker(legacyTopic: string, shard: string, movedTo: string): OutputRecord {
  return {
    topic: legacyTopic,
    key: Buffer.from(legacyCheckpointKey(shard)),
    value: Buffer.from(JSON.stringify({ movedTo, shard })),
    headers: new Map(),
  };
}
