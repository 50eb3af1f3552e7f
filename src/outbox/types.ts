import type { EventClass, EventMetadata } from "../contracts/index.ts";

/**
 * The seam between everything that emits events and the durable outbox beneath it.
 * Callers hand over a fully built event; `append` returns once the event is stored durably
 * (per the fsync policy), with its device sequence number assigned.
 */
export interface OutboxEntryInput {
  readonly subject: string;
  readonly eventClass: EventClass;
  /** Event metadata without the sequence: the outbox assigns it. */
  readonly metadata: Omit<EventMetadata, "sequence">;
  /** The JSON body, already serialised. */
  readonly payload: Uint8Array;
}

export interface StoredOutboxEntry extends OutboxEntryInput {
  readonly sequence: number;
  readonly createdAtMs: number;
}

export interface OutboxStats {
  readonly pendingCount: number;
  readonly pendingBytes: number;
  readonly oldestPendingAgeMs: number | null;
  readonly lastSequence: number;
  readonly deliveredCount: number;
  readonly evictedTelemetry: number;
  readonly evictedState: number;
  readonly deadLetters: number;
  /** Events accepted while the store could not be written, held in memory until it can. */
  readonly heldInMemory: number;
  /** Set when this run started past numbers an earlier run reserved (a crash that may have lost events). */
  readonly sequenceSkip: { readonly after: number; readonly through: number } | null;
  readonly lastError: string | null;
  /** Why stored events wait instead of going out (e.g. transport's `NO_STREAM_REASON`), until they go out again. */
  readonly deliveryProblem: string | null;
}
