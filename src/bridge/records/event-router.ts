import {
  BridgeHeader,
  type DeadLetterKind,
  EVENT_BODY_SCHEMAS,
  type EventEnvelope,
  EventHeader,
  EventType,
  machineIdOfSubject,
  parseMachineEventSubject,
  type TaskResult,
  type TelemetrySample,
  type TopicRole,
} from "../../contracts/index.ts";
import { bridgedHeaders } from "./kafka-headers.ts";
import { provenanceOf } from "./provenance.ts";
import { headerValue, type OutputRecord, recordSize, type SourceMessage, textOf } from "./source-message.ts";
import { taskResultRowOf } from "./task-result-row.ts";
import { telemetryRowOf } from "./telemetry-row.ts";

export type TopicNames = Readonly<Record<TopicRole, string>>;

/** What becomes of one stream message. */
export type Routed =
  | {
      readonly kind: "record";
      readonly record: OutputRecord;
      readonly machineId: string;
      readonly sequence: number | null;
    }
  | {
      readonly kind: "dead-letter";
      readonly record: OutputRecord;
      readonly reason: string;
      readonly deadLetterKind: DeadLetterKind;
    };

/** The identity of an event, whoever published it: ours carry headers, a stock publisher may not. */
export interface EventIdentity {
  readonly machineId: string;
  readonly eventType: EventType;
  /** X-Event-ID, else Nats-Msg-Id, else the stream position: stable, so a redelivery is the same event. */
  readonly eventId: string;
  readonly sequence: number | null;
  readonly timestamp: string;
}

export function identityOf(message: SourceMessage): EventIdentity | null {
  const route = parseMachineEventSubject(message.subject);
  if (!route) return null;
  const sequenceText = headerValue(message, EventHeader.sequence);
  const sequenceNumber = sequenceText !== undefined && /^\d+$/.test(sequenceText) ? Number(sequenceText) : 0;
  const sequence = sequenceNumber > 0 ? sequenceNumber : null;
  const headerTime = headerValue(message, EventHeader.timestamp);
  const headerMs = headerTime === undefined ? Number.NaN : Date.parse(headerTime);
  const timestamp = new Date(Number.isNaN(headerMs) ? message.storedAtMs : headerMs).toISOString();
  return {
    machineId: route.machineId,
    eventType: route.eventType,
    eventId:
      headerValue(message, EventHeader.eventId) ??
      headerValue(message, EventHeader.msgId) ??
      `${message.stream}:${message.streamSequence}`,
    sequence,
    timestamp,
  };
}

export interface RouterOptions {
  readonly topics: TopicNames;
  /** A record (key, value and headers) larger than this, for its topic, goes to the dead-letter topic instead. */
  readonly maxRecordBytes: (topic: string) => number;
}

const TOPIC_OF_TYPE: Readonly<Record<EventType, TopicRole>> = {
  [EventType.telemetry]: "telemetry",
  [EventType.inventory]: "inventory",
  [EventType.installedAgent]: "events",
  [EventType.clientConnection]: "events",
  [EventType.hostname]: "events",
  [EventType.toolInstallationStatus]: "events",
  [EventType.toolConnection]: "events",
  [EventType.configStatus]: "events",
  [EventType.clientUpdateStatus]: "events",
  [EventType.clientUninstallStatus]: "events",
  // Never read: TASK_OUTPUT is left in NATS (bridge.ts, EVENT_STREAMS; DESIGN, "Remote tasks").
  [EventType.taskOutput]: "events",
  [EventType.taskResult]: "taskResults",
  [EventType.outboxGauge]: "events",
};

/** The machine a message may be keyed to: its subject's, when the message is that machine's event (provenance.ts). */
function attributedMachineOf(message: SourceMessage): string | null {
  const machineId = machineIdOfSubject(message.subject);
  return machineId !== null && provenanceOf(message, machineId).kind === "machine" ? machineId : null;
}

/**
 * Turns a stream message into its Kafka record: telemetry samples and task ends into flat rows,
 * inventories into envelopes on their compacted topic, every other event into an envelope. A message that cannot
 * be read (headers the NATS client refuses, not JSON, wrong schema, a subject no event has) or that would not fit becomes a dead
 * letter carrying the reason and every original header: acked, counted, never blocking. One that
 * is not the event of the machine its subject names (provenance.ts) becomes an unattributed dead
 * letter: no key, never counted or deduplicated as that machine's.
 */
export function routeMessage(message: SourceMessage, options: RouterOptions): Routed {
  // Without its headers nothing says whose event it is: unattributed, whatever the subject says.
  if (message.unreadableHeaders !== undefined)
    return deadLetter(
      message,
      options,
      "unreadable-headers",
      `its headers cannot be read: ${message.unreadableHeaders}`,
      null,
    );
  const identity = identityOf(message);
  if (!identity)
    return deadLetter(
      message,
      options,
      "unknown-subject",
      `no event is published on ${message.subject}`,
      attributedMachineOf(message),
    );
  const provenance = provenanceOf(message, identity.machineId);
  if (provenance.kind === "unattributed") return deadLetter(message, options, "unattributed", provenance.reason, null);
  let body: unknown;
  try {
    body = JSON.parse(textOf(message.data));
  } catch (error) {
    return deadLetter(
      message,
      options,
      "not-json",
      `the body is not JSON: ${(error as Error).message}`,
      identity.machineId,
    );
  }
  const parsed = EVENT_BODY_SCHEMAS[identity.eventType].safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
    return deadLetter(
      message,
      options,
      "wrong-schema",
      `not a valid ${identity.eventType} body: ${where}${issue?.message ?? "invalid"}`,
      identity.machineId,
    );
  }
  const topicRole = TOPIC_OF_TYPE[identity.eventType];
  const value =
    identity.eventType === EventType.telemetry
      ? telemetryRowOf(parsed.data as TelemetrySample, identity)
      : identity.eventType === EventType.taskResult
        ? taskResultRowOf(parsed.data as TaskResult, {
            ...identity,
            causationId: headerValue(message, EventHeader.causationId) ?? null,
            correlationId: headerValue(message, EventHeader.correlationId) ?? null,
          })
        : envelopeOf(message, identity, body);
  const record: OutputRecord = {
    topic: options.topics[topicRole],
    key: Buffer.from(identity.machineId),
    value: Buffer.from(JSON.stringify(value)),
    headers: bridgedHeaders(message),
  };
  const size = recordSize(record);
  const limit = options.maxRecordBytes(record.topic);
  if (size > limit) {
    return deadLetter(
      message,
      options,
      "too-large",
      `the ${topicRole} record would be ${size} bytes, over the ${limit}-byte limit for topic ${record.topic}`,
      identity.machineId,
    );
  }
  return { kind: "record", record, machineId: identity.machineId, sequence: identity.sequence };
}

/** The envelope keeps the body as the device sent it (not as parsed): readers see what was said. */
function envelopeOf(message: SourceMessage, identity: EventIdentity, body: unknown): EventEnvelope {
  return {
    eventId: identity.eventId,
    eventType: identity.eventType,
    machineId: identity.machineId,
    sequence: identity.sequence,
    timestamp: identity.timestamp,
    correlationId: headerValue(message, EventHeader.correlationId) ?? null,
    causationId: headerValue(message, EventHeader.causationId) ?? null,
    schemaVersion: headerValue(message, EventHeader.schemaVersion) ?? "1",
    subject: message.subject,
    body,
  };
}

function deadLetter(
  message: SourceMessage,
  options: RouterOptions,
  kind: DeadLetterKind,
  reason: string,
  machineId: string | null,
): Routed {
  const headers = bridgedHeaders(message, [
    [BridgeHeader.error, reason],
    [BridgeHeader.errorKind, kind],
  ]);
  const withData: OutputRecord = {
    topic: options.topics.deadLetter,
    key: machineId === null ? undefined : Buffer.from(machineId),
    value: Buffer.from(message.data),
    headers,
  };
  // A dead letter too large to write keeps its headers and reason; the event stays in the stream.
  const record =
    recordSize(withData) <= options.maxRecordBytes(withData.topic) ? withData : { ...withData, value: Buffer.alloc(0) };
  return { kind: "dead-letter", record, reason, deadLetterKind: kind };
}

/** The dead letter of an event the broker refused as too large: headers and reason, no body. */
export function tooLargeDeadLetter(message: SourceMessage, options: RouterOptions, reason: string): OutputRecord {
  const routed = deadLetter(
    message,
    { ...options, maxRecordBytes: () => 0 },
    "too-large",
    reason,
    attributedMachineOf(message),
  );
  return routed.record;
}
