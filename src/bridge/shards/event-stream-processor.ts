import type { Logger } from "../../runtime/logger.ts";
import { SequenceWindow, type SequenceWindowSnapshot } from "../dedupe/sequence-window.ts";
import { stateRecord } from "../kafka/checkpoint.ts";
import { type RouterOptions, routeMessage } from "../records/event-router.ts";
import type { OutputRecord, SourceMessage } from "../records/source-message.ts";
import type { BatchPositions, PreparedBatch, ShardProcessor, TakeoverContext } from "./shard-processor.ts";

const WINDOW_KIND = "dedupe";

/**
 * Bridges one event stream into its topics (see records/event-router.ts), dropping the copies an
 * agent published again after JetStream's duplicate window: per machine, a window of the sequence
 * numbers already bridged (dedupe/sequence-window.ts). The windows a batch changed are written
 * with the batch, so after any crash or takeover they match exactly what Kafka holds.
 */
export class EventStreamProcessor implements ShardProcessor {
  readonly name: string;
  readonly streams: readonly string[];
  readonly #router: RouterOptions;
  readonly #checkpointTopic: string;
  readonly #logger: Logger;
  readonly preparesAhead = true;
  #windows = new Map<string, SequenceWindow>();
  /** Windows of batches prepared but not yet committed, newest first in effect (later batches replace). */
  #uncommitted = new Map<string, SequenceWindow>();

  constructor(options: { stream: string; router: RouterOptions; checkpointTopic: string; logger: Logger }) {
    this.name = options.stream;
    this.streams = [options.stream];
    this.#router = options.router;
    this.#checkpointTopic = options.checkpointTopic;
    this.#logger = options.logger;
  }

  async takeover(context: TakeoverContext): Promise<void> {
    this.#windows = new Map();
    this.#uncommitted = new Map();
    for (const [id, value] of context.states) {
      const [kind, machineId] = splitStateId(id);
      if (kind !== WINDOW_KIND || machineId === null) continue;
      this.#windows.set(machineId, new SequenceWindow(value as SequenceWindowSnapshot));
    }
  }

  async prepare(messages: readonly SourceMessage[], _positions: BatchPositions): Promise<PreparedBatch> {
    const records: OutputRecord[] = [];
    const touched = new Map<string, SequenceWindow>();
    let deadLetters = 0;
    let duplicatesDropped = 0;
    let unverifiableSequences = 0;
    for (const message of messages) {
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
        const window =
          touched.get(routed.machineId) ??
          (this.#uncommitted.get(routed.machineId) ?? this.#windows.get(routed.machineId))?.clone() ??
          new SequenceWindow();
        touched.set(routed.machineId, window);
        const verdict = window.verdict(routed.sequence);
        if (verdict === "duplicate") {
          duplicatesDropped++;
          this.#logger.info(
            { machineId: routed.machineId, sequence: routed.sequence, streamSequence: message.streamSequence },
            "dropped a copy of an event already bridged (stored again after the stream's duplicate window)",
          );
          continue;
        }
        if (verdict === "too-old") unverifiableSequences++;
        window.record(routed.sequence);
      }
      records.push(routed.record);
    }
    const stateRecords = [...touched].map(([machineId, window]) =>
      stateRecord(this.#checkpointTopic, WINDOW_KIND, this.name, machineId, window.snapshot()),
    );
    for (const [machineId, window] of touched) this.#uncommitted.set(machineId, window);
    return {
      records,
      stateRecords,
      counts: { produced: records.length - deadLetters, deadLetters, duplicatesDropped, unverifiableSequences },
      committed: () => {
        for (const [machineId, window] of touched) {
          this.#windows.set(machineId, window);
          // A later batch's own window for the machine (prepared on top of this one) stays.
          if (this.#uncommitted.get(machineId) === window) this.#uncommitted.delete(machineId);
        }
      },
    };
  }

  discardUncommitted(): void {
    this.#uncommitted = new Map();
  }

  async release(): Promise<void> {
    this.#windows = new Map();
    this.#uncommitted = new Map();
  }

  stats(): Record<string, number> {
    return { machinesTracked: this.#windows.size };
  }
}

export function splitStateId(id: string): [string, string | null] {
  const slash = id.indexOf("/");
  return slash < 0 ? [id, null] : [id.slice(0, slash), id.slice(slash + 1)];
}
