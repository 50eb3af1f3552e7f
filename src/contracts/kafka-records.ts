import * as z from "zod";
import { TaskStatus } from "./tasks.ts";

/**
 * What the companion bridge writes into Kafka (docs/DESIGN.md, "The companion bridge"): the record
 * shapes downstream readers (Pinot, analytics jobs) rely on. Every record is JSON, keyed by the
 * machine id as a plain UTF-8 string, so every producer of a topic partitions it alike.
 */

/** Default topic names; `devices-topic` is OpenFrame's own name for MachinePinotMessage rows. */
export const DEFAULT_TOPICS = {
  devices: "devices-topic",
  telemetry: "machine-telemetry",
  events: "machine-events",
  inventory: "machine-inventory",
  taskResults: "machine-task-results",
  deadLetter: "edge-bridge-dead-letter",
  checkpoint: "edge-bridge-checkpoints",
} as const;
export type TopicRole = keyof typeof DEFAULT_TOPICS;

/**
 * Headers the bridge adds to every record, besides a copy of every header the event carried.
 * Reserved: a header of one of these names (in any case) that a publisher set is never copied;
 * the record carries only the bridge's own.
 */
export const BridgeHeader = {
  stream: "nats-stream",
  streamSequence: "nats-stream-seq",
  subject: "nats-subject",
  /** Spring's JsonSerializer type header, which OpenFrame's Java consumers read. */
  typeId: "__TypeId__",
  /** Dead letters: why the event could not be bridged, and which kind of problem it was. */
  error: "edge-bridge-error",
  errorKind: "edge-bridge-error-kind",
} as const;

export const MACHINE_PINOT_MESSAGE_TYPE_ID = "com.openframe.kafka.model.MachinePinotMessage";

/**
 * Why an event went to the dead-letter topic instead of its own. `unattributed`: stored on a
 * machine's subject but not that machine's event (no `X-Machine-ID`, or another machine's): such
 * a dead letter has no key.
 */
export const DeadLetterKind = z.enum([
  "not-json",
  "wrong-schema",
  "unknown-subject",
  "too-large",
  "unattributed",
  "unreadable-headers",
]);
export type DeadLetterKind = z.infer<typeof DeadLetterKind>;

/**
 * `machine-events` (and `machine-inventory`, compacted, the newest inventory per machine): one
 * envelope per event. `machineId` comes from the subject, never from a header or the body.
 */
export const EventEnvelope = z.object({
  eventId: z.string().min(1),
  eventType: z.string().min(1),
  machineId: z.string().min(1),
  /** The device's own sequence (X-Sequence: never reused, gaps declared); null for a publisher that sends none. */
  sequence: z.number().int().positive().nullable(),
  /** When the event happened, by the device's clock (X-Timestamp; else when the stream stored it). */
  timestamp: z.iso.datetime({ offset: true }),
  correlationId: z.string().nullable(),
  causationId: z.string().nullable(),
  schemaVersion: z.string(),
  subject: z.string(),
  body: z.unknown(),
});
export type EventEnvelope = z.infer<typeof EventEnvelope>;

/**
 * `machine-telemetry`: one row per TelemetrySample, flattened to the columns an analytics table
 * wants. Sums are over every filesystem, interface or disk the sample names; a part the device
 * could not read is null, never zero.
 */
export const TelemetryRow = z.object({
  eventId: z.string().min(1),
  machineId: z.string().min(1),
  sequence: z.number().int().positive().nullable(),
  timestamp: z.iso.datetime({ offset: true }),
  /** The same instant as epoch milliseconds: the time column of a Pinot table. */
  timestampMs: z.number().int(),
  intervalSeconds: z.number().nullable(),
  cpuTotalPercent: z.number().nullable(),
  cpuCores: z.number().int().nullable(),
  load1: z.number().nullable(),
  load5: z.number().nullable(),
  load15: z.number().nullable(),
  memoryTotalBytes: z.number().nullable(),
  memoryUsedBytes: z.number().nullable(),
  memoryAvailableBytes: z.number().nullable(),
  memoryUsedPercent: z.number().nullable(),
  swapTotalBytes: z.number().nullable(),
  swapUsedBytes: z.number().nullable(),
  filesystemTotalBytes: z.number(),
  filesystemUsedBytes: z.number(),
  /** The fullest filesystem's use: what an alert on "disk almost full" wants. */
  filesystemMaxUsedPercent: z.number().nullable(),
  networkRxBytesPerSecond: z.number(),
  networkTxBytesPerSecond: z.number(),
  networkErrorsPerSecond: z.number(),
  diskReadBytesPerSecond: z.number(),
  diskWriteBytesPerSecond: z.number(),
  uptimeSeconds: z.number().nullable(),
  processCount: z.number().int().nullable(),
  agentRssBytes: z.number(),
  agentCpuPercent: z.number(),
  outboxPendingCount: z.number().int().nullable(),
  outboxOldestPendingAgeMs: z.number().nullable(),
  tagKeyValues: z.array(z.string()),
  collectorErrors: z.number().int(),
});
export type TelemetryRow = z.infer<typeof TelemetryRow>;

/**
 * `machine-task-results`: one flat row per task end (TaskResult, `machine.{id}.task.result`), so
 * "which machines failed task X and why" is one query. The time columns are epoch milliseconds
 * beside their ISO forms; a part the machine did not say (no start, no exit code) is null.
 */
export const TaskResultRow = z.object({
  eventId: z.string().min(1),
  machineId: z.string().min(1),
  sequence: z.number().int().positive().nullable(),
  /** When the end was reported, by the device's clock (X-Timestamp; else when the stream stored it). */
  timestamp: z.iso.datetime({ offset: true }),
  /** The task command's event id (X-Causation-ID): which sending of the task this end answers. */
  causationId: z.string().nullable(),
  correlationId: z.string().nullable(),
  /** Null only for a malformed task that named none (REJECTED). */
  taskId: z.string().nullable(),
  status: TaskStatus,
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  error: z.string().nullable(),
  startedAt: z.iso.datetime({ offset: true }).nullable(),
  startedAtMs: z.number().int().nullable(),
  finishedAt: z.iso.datetime({ offset: true }),
  /** The table's time column. */
  finishedAtMs: z.number().int(),
  durationMs: z.number().int().nullable(),
  stdoutBytes: z.number().int().nonnegative(),
  stderrBytes: z.number().int().nonnegative(),
  truncated: z.boolean(),
  chunks: z.number().int().nonnegative(),
  /** The last lines of each stream as the end carried them, joined with newlines. */
  lastStdout: z.string(),
  lastStderr: z.string(),
});
export type TaskResultRow = z.infer<typeof TaskResultRow>;
