import { EventHeader, isSafeToken, publishedSubjectOf } from "../../contracts/index.ts";
import type { Logger } from "../../runtime/index.ts";
import { DedupeWindowRecord, DedupeWindows, lifeKeyOfState, outboxLifeKey, windowStateKey } from "../dedupe/index.ts";
import {
  headerValue,
  type OutputRecord,
  type RouterOptions,
  routeMessage,
  type SourceMessage,
} from "../records/index.ts";
import type { BatchPositions, PreparedBatch, ShardProcessor, TakeoverContext } from "./shard-processor.ts";

/** At most this long, an X-Outbox-ID is taken as one (a random UUID is 36). */
const MAX_OUTBOX_ID_LENGTH = 64;

/**
 * Bridges one event stream into its topics (see records/event-router.ts), dropping the copies an
 * agent published again after JetStream's duplicate window: per outbox life (machine and
 * X-Outbox-ID), a window of the sequence numbers already bridged (dedupe/dedupe-windows.ts). The
 * windows a batch changed are written with the batch, so after any crash or takeover they match
 * exactly what Kafka holds.
 */
export class EventStreamProcessor implements ShardProcessor {
  readonly name: string;
  readonly streams: readonly string[];
  readonly #router: RouterOptions;
  readonly #logger: Logger;
  readonly preparesAhead = true;
  readonly #windows: DedupeWindows;
  #unreadableStates = 0;
  #windowsEvicted = 0;

  /** The stream's partition count when it stores messages under partitioned subjects (contracts/partitions.ts); else 0. */
  readonly #partitions: number;

  constructor(options: {
    stream: string;
    /** The shard's name: the stream's, or one partition's of it (shard-plan.ts). Default: the stream's. */
    name?: string;
    partitions?: number;
    router: RouterOptions;
    logger: Logger;
    windowIdleMs?: number;
  }) {
    this.name = options.name ?? options.stream;
    this.streams = [options.stream];
    this.#partitions = options.partitions ?? 0;
    this.#router = options.router;
    this.#logger = options.logger;
    this.#windows = new DedupeWindows(options.windowIdleMs === undefined ? {} : { idleMs: options.windowIdleMs });
  }

  async takeover(context: TakeoverContext): Promise<void> {
    const windows: Array<[string, DedupeWindowRecord]> = [];
    let unreadable: string | null = null;
    let unreadableCount = 0;
    for (const [key, value] of context.states) {
      const lifeKey = lifeKeyOfState(key);
      if (lifeKey === null) continue;
      const parsed = DedupeWindowRecord.safeParse(value);
      if (parsed.success) windows.push([lifeKey, parsed.data]);
      else {
        unreadable ??= key;
        unreadableCount++;
      }
    }
    this.#windows.load(windows);
    this.#unreadableStates += unreadableCount;
    if (unreadableCount > 0)
      this.#logger.warn(
        { unreadable: unreadableCount, firstKey: unreadable },
        "dedupe windows in the state topic that cannot be read were skipped: those outboxes start with an empty window (a late copy of their events may be bridged twice, none is lost)",
      );
  }

  async prepare(messages: readonly SourceMessage[], _positions: BatchPositions): Promise<PreparedBatch> {
    const records: OutputRecord[] = [];
    const draft = this.#windows.draft();
    let deadLetters = 0;
    let duplicatesDropped = 0;
    let unverifiableSequences = 0;
    for (const stored of messages) {
      // Routed as published: the machine token is the publisher's either way, and Kafka sees no partition.
      const message =
        this.#partitions > 0 ? { ...stored, subject: publishedSubjectOf(stored.subject, this.#partitions) } : stored;
      const routed = routeMessage(message, this.#router);
      if (routed.kind === "dead-letter") {
        deadLetters++;
        this.#logger.warn(
          {
            subject: message.subject,
            streamSequence: message.streamSequence,
            reason: routed.reason,
            kind: routed.deadLetterKind,
          },
          "event sent to the dead-letter topic",
        );
        records.push(routed.record);
        continue;
      }
      if (routed.sequence !== null) {
        const outboxId = outboxIdOf(message);
        const verdict = draft.judge(outboxLifeKey(routed.machineId, outboxId), routed.sequence, message.storedAtMs);
        if (verdict === "duplicate") {
          duplicatesDropped++;
          this.#logger.info(
            {
              machineId: routed.machineId,
              outboxId,
              sequence: routed.sequence,
              streamSequence: message.streamSequence,
            },
            "dropped a copy of an event already bridged (stored again after the stream's duplicate window)",
          );
          continue;
        }
        if (verdict === "too-old") unverifiableSequences++;
      }
      records.push(routed.record);
    }
    const evicted = draft.evictIdle();
    const stateChanges = draft.changes().map((change) => ({ key: windowStateKey(change.key), value: change.value }));
    return {
      records,
      stateChanges,
      counts: { produced: records.length - deadLetters, deadLetters, duplicatesDropped, unverifiableSequences },
      committed: () => {
        this.#windows.commit(draft);
        this.#windowsEvicted += evicted;
      },
    };
  }

  discardUncommitted(): void {
    this.#windows.discardUncommitted();
  }

  async release(): Promise<void> {
    this.#windows.clear();
  }

  stats(): Record<string, number> {
    return {
      windowsTracked: this.#windows.size,
      windowsEvicted: this.#windowsEvicted,
      unreadableStates: this.#unreadableStates,
    };
  }
}

/** The event's X-Outbox-ID when it is a well-formed one; null otherwise (an agent from before it). */
function outboxIdOf(message: SourceMessage): string | null {
  const value = headerValue(message, EventHeader.outboxId);
  return value !== undefined && value.length <= MAX_OUTBOX_ID_LENGTH && isSafeToken(value) ? value : null;
}
