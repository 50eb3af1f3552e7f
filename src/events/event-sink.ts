import type { EventBody, EventType } from "../contracts/index.ts";

/** What travels with every event, whatever its type. */
interface EventEnvelope {
  /** Ties events of one flow together; a fresh one is made when absent. */
  readonly correlationId?: string;
  /** The id of the command this event answers, if any. */
  readonly causationId?: string;
  /**
   * A fixed event id, for an event that may be emitted again after a crash (a report kept in a
   * file until it is in the outbox): the stream then drops the second copy. Fresh when absent.
   */
  readonly eventId?: string;
}

/**
 * One event a capability wants to send, of one type with the body that type's schema gives
 * (contracts/event-bodies.ts): a body that does not match its type does not compile.
 */
export type OutgoingEvent<T extends EventType = EventType> = {
  readonly [K in T]: EventEnvelope & { readonly type: K; readonly body: EventBody<K> };
}[T];

export interface EmittedEvent {
  readonly eventId: string;
  readonly sequence: number;
}

/**
 * The only way a capability sends anything to the platform. `emit` resolves once the event is
 * stored on the device; delivery happens later, in the background, through the outbox.
 */
export interface EventSink {
  emit(event: OutgoingEvent): Promise<EmittedEvent>;
}
