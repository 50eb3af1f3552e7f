import { randomUUID } from "node:crypto";
import { eventClassOf, type MachineSubjects, SCHEMA_VERSION, subjectFor } from "../contracts/index.ts";
import type { OutboxEntryInput, StoredOutboxEntry } from "../outbox/types.ts";
import type { Clock } from "../runtime/clock.ts";
import type { EmittedEvent, EventSink, OutgoingEvent } from "./event-sink.ts";

/** The part of the outbox the sink needs: a durable append. */
export interface DurableAppend {
  append(input: OutboxEntryInput): StoredOutboxEntry;
}

const encoder = new TextEncoder();

/**
 * Turns a capability's event into an outbox entry: id, timestamp, subject, class and headers are
 * fixed here, once, so a redelivery after a crash carries the same `Nats-Msg-Id` and JetStream
 * drops the duplicate.
 */
export function createOutboxEventSink(options: {
  machineId: string;
  subjects: MachineSubjects;
  clock: Clock;
  outbox: DurableAppend;
  /** Called after each append with the event stored (e.g. to count it for metrics). */
  afterAppend?: (event: OutgoingEvent) => void;
}): EventSink {
  const { machineId, subjects, clock, outbox } = options;
  return {
    async emit(event: OutgoingEvent): Promise<EmittedEvent> {
      const eventId = event.eventId ?? randomUUID();
      const stored = outbox.append({
        subject: subjectFor(subjects, event.type),
        eventClass: eventClassOf(event.type),
        metadata: {
          eventId,
          eventType: event.type,
          machineId,
          timestamp: new Date(clock.now()).toISOString(),
          correlationId: event.correlationId ?? eventId,
          causationId: event.causationId,
          schemaVersion: SCHEMA_VERSION,
        },
        payload: encoder.encode(JSON.stringify(event.body)),
      });
      options.afterAppend?.(event);
      return { eventId, sequence: stored.sequence };
    },
  };
}
