import { EdgeError } from "../../errors/index.ts";
import {
  type KafkaClientOptions,
  readCommittedPartition,
  shardStateTopic,
  shardStateTopicSpec,
  withDeadline,
  withKafkaAdmin,
} from "../kafka/index.ts";
import type { OutputRecord } from "../records/index.ts";
import {
  CHECKPOINT_KEY,
  CheckpointLostError,
  CheckpointUnreadableError,
  CheckpointValue,
  type StateChange,
} from "./checkpoint.ts";
import { type LegacyShardState, legacyMovedMarker, readLegacyShardState } from "./legacy-checkpoints.ts";

/** What a takeover reads back: the newest committed checkpoint and state records of one shard. */
export interface LoadedShardState {
  readonly checkpoint: CheckpointValue | null;
  /** State key -> its newest committed value, parsed JSON (the processor that owns the kind validates it). */
  readonly states: ReadonlyMap<string, unknown>;
  /** State records that were not JSON: skipped (each is one window forgotten, never a position). */
  readonly unreadable: number;
  /** Bytes of keys and values read (what a takeover costs). */
  readonly bytesRead: number;
  /** The legacy shared topic this state was read from: the first transaction moves it into the shard's own topic. */
  readonly migratedFrom: string | null;
}

/** Where a shard keeps its checkpoint and state, and how they are written. */
export interface ShardStateStore {
  readonly topic: string;
  /** Reads the shard's state back; called after the shard's producer fenced every earlier one. */
  load(): Promise<LoadedShardState>;
  /** The records of one transaction's state: the changes, then the checkpoint. */
  records(checkpoint: CheckpointValue, changes: readonly StateChange[]): OutputRecord[];
  /** The first transaction after a migration: all of the state, the checkpoint, and the legacy topic told. */
  migrationRecords(loaded: LoadedShardState, checkpoint: CheckpointValue): OutputRecord[];
}

const LOAD_DEADLINE_MS = 60_000;

/**
 * The shard a partition of a stream succeeds (the stream's own shard, which bridged it before it
 * was partitioned), and where that stream stands in NATS.
 */
export interface Predecessor {
  readonly shard: string;
  readonly stream: string;
  /**
   * The last sequence of the stream still stored under the predecessor's subjects (0: none), and
   * when the stream was made: the predecessor must have committed past it before any partition starts.
   */
  readonly unpartitionedEnd: () => Promise<{ readonly lastSequence: number; readonly streamCreated: string }>;
}

/** Key, in the predecessor's topic, saying which partition took its state (so it is never taken twice). */
const inheritedByKey = (shard: string): string => `inherited-by/${shard}`;
const INHERITED_BY_PREFIX = "inherited-by/";

/** A partition waits: the messages stored before the stream was partitioned are not all bridged yet. */
export class PredecessorNotDrainedError extends EdgeError {
  readonly code = "EDGE_BRIDGE_PARTITION_WAITING";
  constructor(shard: string, predecessor: string, committed: number, lastSequence: number) {
    super(
      `shard ${shard} waits for shard ${predecessor} to bridge the messages stored before the stream was partitioned (through sequence ${lastSequence}; committed ${committed}), so each machine's events keep their order`,
    );
    this.name = "PredecessorNotDrainedError";
  }
}

/** A partition's own topic lost the state it took from its predecessor: taking it again would bridge twice. */
export class InheritedStateLostError extends EdgeError {
  readonly code = "EDGE_BRIDGE_CHECKPOINT_LOST";
  constructor(shard: string, topic: string, predecessorTopic: string) {
    super(
      `shard ${shard}: it took its state from ${predecessorTopic} into ${topic}, which holds no checkpoint now; the shard stays stopped rather than bridge its partition again (docs/bridge.md, "State topics")`,
    );
    this.name = "InheritedStateLostError";
  }
}

/**
 * The Kafka state store: every shard's checkpoint and state records in a topic of its own, so a
 * takeover reads only its own shard's state, and no other shard's open transaction can hold its
 * read back. A shard whose topic holds no checkpoint yet is looked up once in the legacy topic
 * (every shard's state in one, before this layout) and moved (legacy-checkpoints.ts).
 */
export class KafkaShardStateStore implements ShardStateStore {
  readonly topic: string;
  readonly #shard: string;
  readonly #legacyTopic: string;
  readonly #replicas: number;
  readonly #clientOptions: () => KafkaClientOptions;
  readonly #predecessor: Predecessor | null;
  readonly #predecessorTopic: string | null;

  constructor(options: {
    shard: string;
    checkpointTopic: string;
    replicas: number;
    clientOptions: () => KafkaClientOptions;
    /** A partition of a stream: its first takeover waits for this shard, then starts from its state. */
    predecessor?: Predecessor;
  }) {
    this.#shard = options.shard;
    this.topic = shardStateTopic(options.checkpointTopic, options.shard);
    this.#legacyTopic = options.checkpointTopic;
    this.#predecessor = options.predecessor ?? null;
    this.#predecessorTopic = options.predecessor
      ? shardStateTopic(options.checkpointTopic, options.predecessor.shard)
      : null;
    this.#replicas = options.replicas;
    this.#clientOptions = options.clientOptions;
  }

  async load(): Promise<LoadedShardState> {
    return withDeadline(this.#load(), LOAD_DEADLINE_MS, `reading the state of shard ${this.#shard}`);
  }

  async #load(): Promise<LoadedShardState> {
    const clientOptions = this.#clientOptions();
    const topics = await withKafkaAdmin(clientOptions, async (admin) => {
      const existing = await admin.listTopics();
      if (!existing.has(this.topic)) await admin.createTopic(shardStateTopicSpec(this.topic, this.#replicas));
      return existing;
    });
    const own = await this.#readOwn(clientOptions);
    if (this.#predecessor) return this.#inherit(clientOptions, this.#predecessor, own, topics);
    if (own.checkpoint !== null) return own;
    if (!topics.has(this.#legacyTopic)) return own;
    const legacy: LegacyShardState = await readLegacyShardState(clientOptions, this.#legacyTopic, this.#shard);
    if (legacy.kind === "moved") throw new CheckpointLostError(this.#shard, this.topic, this.#legacyTopic);
    // Nothing of this shard there either: its first transaction still writes a checkpoint of its
    // own (and the marker), or every takeover of a quiet shard would read the shared topic again.
    if (legacy.kind === "none") return { ...own, migratedFrom: this.#legacyTopic };
    return {
      checkpoint: legacy.checkpoint,
      states: legacy.states,
      unreadable: legacy.unreadable,
      bytesRead: own.bytesRead + legacy.bytesRead,
      migratedFrom: this.#legacyTopic,
    };
  }

  /**
   * A partition's first takeover: once its predecessor has committed every message stored before
   * the stream was partitioned, the partition starts from the predecessor's checkpoint and dedupe
   * windows (a machine's events before and after keep one order and one window). Until then it
   * throws PredecessorNotDrainedError, and the runner tries again: nothing is written meanwhile.
   * A partition whose checkpoint is of an earlier stream of that name (made again since: the runner
   * reads it from its start) waits the same way, and keeps its own state.
   */
  async #inherit(
    clientOptions: KafkaClientOptions,
    predecessor: Predecessor,
    own: LoadedShardState,
    topics: ReadonlySet<string>,
  ): Promise<LoadedShardState> {
    const ownPosition = own.checkpoint?.positions[predecessor.stream];
    if (own.checkpoint !== null && ownPosition === undefined) return own;
    const { lastSequence, streamCreated } = await predecessor.unpartitionedEnd();
    if (ownPosition?.streamCreated === streamCreated) return own;
    const topic = this.#predecessorTopic as string;
    const reader = new ShardStateReader(topic, predecessor.shard);
    if (topics.has(topic)) await readCommittedPartition(clientOptions, topic, 0, 0n, (record) => reader.add(record));
    const before = reader.finish();
    const position = before.checkpoint?.positions[predecessor.stream];
    // A checkpoint of an earlier stream of that name covers nothing of this one.
    const committed = position && position.streamCreated === streamCreated ? position.sequence : 0;
    if (committed < lastSequence)
      throw new PredecessorNotDrainedError(this.#shard, predecessor.shard, committed, lastSequence);
    if (own.checkpoint !== null) return own;
    if (before.states.has(inheritedByKey(this.#shard)))
      throw new InheritedStateLostError(this.#shard, this.topic, topic);
    const states = new Map([...before.states].filter(([key]) => !key.startsWith(INHERITED_BY_PREFIX)));
    return {
      checkpoint: before.checkpoint,
      states,
      unreadable: before.unreadable,
      bytesRead: own.bytesRead + before.bytesRead,
      migratedFrom: topic,
    };
  }

  async #readOwn(clientOptions: KafkaClientOptions): Promise<LoadedShardState> {
    const reader = new ShardStateReader(this.topic, this.#shard);
    await readCommittedPartition(clientOptions, this.topic, 0, 0n, (record) => reader.add(record));
    return reader.finish();
  }

  records(checkpoint: CheckpointValue, changes: readonly StateChange[]): OutputRecord[] {
    return stateRecords(this.topic, checkpoint, changes);
  }

  migrationRecords(loaded: LoadedShardState, checkpoint: CheckpointValue): OutputRecord[] {
    const records = stateRecords(
      this.topic,
      checkpoint,
      [...loaded.states].map(([key, value]) => ({ key, value })),
    );
    if (loaded.migratedFrom === null) return records;
    if (loaded.migratedFrom === this.#predecessorTopic)
      records.push({
        topic: loaded.migratedFrom,
        key: Buffer.from(inheritedByKey(this.#shard)),
        value: Buffer.from(JSON.stringify({ shard: this.#shard, movedTo: this.topic })),
        headers: new Map(),
      });
    else records.push(legacyMovedMarker(loaded.migratedFrom, this.#shard, this.topic));
    return records;
  }
}

/** One transaction's state records for a shard's topic: the changes, then the checkpoint. */
export function stateRecords(
  topic: string,
  checkpoint: CheckpointValue,
  changes: readonly StateChange[],
): OutputRecord[] {
  const record = (key: string, value: unknown): OutputRecord => ({
    topic,
    key: Buffer.from(key),
    // null: a tombstone, and compaction removes the key.
    value: value === null ? null : Buffer.from(JSON.stringify(value)),
    headers: new Map(),
  });
  const records = changes.map((change) => record(change.key, change.value));
  records.push(record(CHECKPOINT_KEY, checkpoint));
  return records;
}

/**
 * A shard's state as its topic's committed records (in offset order) say: the newest value of
 * each key. Only those are parsed; a state record that is not JSON is counted and skipped (each
 * is one dedupe window forgotten); a checkpoint that cannot be read is refused
 * (CheckpointUnreadableError), never taken for none.
 */
export class ShardStateReader {
  readonly #topic: string;
  readonly #shard: string;
  /** Each key's newest value, in the order keys were last written (what eviction goes by). */
  readonly #newest = new Map<string, Buffer | null>();
  #bytesRead = 0;

  constructor(topic: string, shard: string) {
    this.#topic = topic;
    this.#shard = shard;
  }

  add(record: { readonly key: Buffer | null; readonly value: Buffer | null }): void {
    this.#bytesRead += (record.key?.length ?? 0) + (record.value?.length ?? 0);
    if (record.key === null) return;
    // Keys are ASCII (safe tokens and the kinds' prefixes): latin1 decodes them fastest.
    const key = record.key.toString("latin1");
    this.#newest.delete(key);
    this.#newest.set(key, record.value);
  }

  finish(): LoadedShardState {
    let checkpoint: CheckpointValue | null = null;
    const states = new Map<string, unknown>();
    let unreadable = 0;
    for (const [key, value] of this.#newest) {
      if (key === CHECKPOINT_KEY) {
        checkpoint = value === null ? null : parseCheckpoint(value, this.#topic, this.#shard);
        continue;
      }
      if (value === null) continue;
      try {
        states.set(key, JSON.parse(value.toString("utf8")) as unknown);
      } catch {
        unreadable++;
      }
    }
    return { checkpoint, states, unreadable, bytesRead: this.#bytesRead, migratedFrom: null };
  }
}

function parseCheckpoint(value: Buffer, topic: string, shard: string): CheckpointValue {
  let json: unknown;
  try {
    json = JSON.parse(value.toString("utf8"));
  } catch (error) {
    throw new CheckpointUnreadableError(topic, "not JSON", error);
  }
  const parsed = CheckpointValue.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CheckpointUnreadableError(
      topic,
      `${issue?.path.join(".") || "value"}: ${issue?.message ?? "invalid"}`,
      parsed.error,
    );
  }
  if (parsed.data.shard !== shard)
    throw new CheckpointUnreadableError(topic, `it belongs to shard ${parsed.data.shard}, not ${shard}`);
  return parsed.data;
}
