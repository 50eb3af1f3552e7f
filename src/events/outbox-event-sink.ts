import { randomUUID } from "node:crypto";
import { eventClassOf, type MachineSubjects, SCHEMA_VERSION, subjectFor } from "../contracts/index.ts";
import type { OutboxEntryInput, StoredOutboxEntry } from "../outbox/index.ts";
import type { Clock } from "../runtime/index.ts";
import type { EmittedEvent, EventSink, OutgoingEvent } from "./event-sink.ts";

/** The part of the outbox the sink needs: a durable append. */
export interface DurableAppend {
  append(input: OutboxEntryInput): StoredOutboxEntry;
}

const encoder = new TextEncoder();

/** The outbox entry of one event: id, timestamp, subject, class and headers fixed here, once. */
export function encodeEvent(
  event: OutgoingEvent,
  context: { readonly machineId: string; readonly subjects: MachineSubjects; readonly clock: Clock },
): OutboxEntryInput & { readonly eventId: string } {
  const eventId = event.eventId ?? randomUUID();
  return {
    eventId,
    subject: subjectFor(context.subjects, event.type),
    eventClass: eventClassOf(event.type),
    metadata: {
      eventId,
      eventType: event.type,
      machineId: context.machineId,
      timestamp: new Date(context.clock.now()).toISOString(),
      correlationId: event.correlationId ?? eventId,
      causationId: event.causationId,
      schemaVersion: SCHEMA_VERSION,
    },
    payload: encoder.encode(JSON.stringify(event.body)),
  };
}

/**
 * Turns a capability's event into an outbox entry (`encodeEvent`), so a redelivery after a crash
 * carries the same `Nats-Msg-Id` and JetStream drops the duplicate.
 */
export function createOutboxEventSink(options: {
  machineId: string;
  subjects: MachineSubjects;
  clock: Clock;
  outbox: DurableAppend;
  /** Called after each append with the event stored (e.g. to count it for metrics). */
  afterAppend?: (event: OutgoingEvent) => void;
}): EventSink {
  const { outbox } = options;
  return {
    async emit(event: OutgoingEvent): Promise<EmittedEvent> {
      const { eventId, ...entry } = encodeEvent(event, options);
      const stored = outbox.append(entry);
      options.afterAppend?.(event);
      return { eventId, sequence: stored.sequence };
    },
  };
}
