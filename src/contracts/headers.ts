/** Header names carried by every published event (docs/DESIGN.md, "Headers on every published event"). */
export const EventHeader = {
  /** JetStream's own de-duplication key: equal to the event id. */
  msgId: "Nats-Msg-Id",
  eventId: "X-Event-ID",
  eventType: "X-Event-Type",
  machineId: "X-Machine-ID",
  timestamp: "X-Timestamp",
  correlationId: "X-Correlation-ID",
  causationId: "X-Causation-ID",
  schemaVersion: "X-Schema-Version",
  /** The device's own sequence, on outbox events only: never reused; its gaps are declared (docs/DESIGN.md). */
  sequence: "X-Sequence",
  /**
   * The outbox life the sequence belongs to, on outbox events only: a random id made whenever the
   * outbox numbers from 1 again (a reinstall, or the database and the sequence floor both lost).
   * (machine, outbox id, sequence) names an event for good; the sequence alone does not.
   */
  outboxId: "X-Outbox-ID",
} as const;

export const SCHEMA_VERSION = "1";

/** The metadata an event carries besides its body; turned into headers at publish time. */
export interface EventMetadata {
  readonly eventId: string;
  readonly eventType: string;
  readonly machineId: string;
  readonly timestamp: string;
  readonly correlationId: string;
  readonly causationId?: string | undefined;
  readonly schemaVersion: string;
  readonly sequence?: number | undefined;
  readonly outboxId?: string | undefined;
}

export function eventHeaderEntries(meta: EventMetadata): Array<[string, string]> {
  const entries: Array<[string, string]> = [
    [EventHeader.msgId, meta.eventId],
    [EventHeader.eventId, meta.eventId],
    [EventHeader.eventType, meta.eventType],
    [EventHeader.machineId, meta.machineId],
    [EventHeader.timestamp, meta.timestamp],
    [EventHeader.correlationId, meta.correlationId],
    [EventHeader.schemaVersion, meta.schemaVersion],
  ];
  if (meta.causationId) entries.push([EventHeader.causationId, meta.causationId]);
  if (meta.sequence !== undefined) entries.push([EventHeader.sequence, String(meta.sequence)]);
  if (meta.outboxId !== undefined) entries.push([EventHeader.outboxId, meta.outboxId]);
  return entries;
}
