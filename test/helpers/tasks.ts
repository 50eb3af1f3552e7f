import { randomUUID } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { EventHeader, TaskOutputChunk, TaskResult } from "../../src/contracts/index.ts";
import { readStream } from "./stream-reader.ts";

/** The platform's side of remote tasks in tests: publish a task or a cancel, read what machines sent back. */
export interface PublishedTask {
  /** The task command's event id (what its chunks and result carry as causation). */
  readonly eventId: string;
  readonly streamSequence: number;
}

/**
 * Publishes `body` on `subject` as the platform does: with an event id and, unless `ttl` is null,
 * a `Nats-TTL` (a task must carry an expiry).
 */
export async function publishTask(
  connection: NatsConnection,
  subject: string,
  body: unknown,
  options: { readonly ttl?: string | null; readonly eventId?: string } = {},
): Promise<PublishedTask> {
  const eventId = options.eventId ?? randomUUID();
  const messageHeaders = headers();
  messageHeaders.set(EventHeader.eventId, eventId);
  const ttl = options.ttl === undefined ? "1h" : options.ttl;
  if (ttl !== null) messageHeaders.set("Nats-TTL", ttl);
  const ack = await jetstream(connection).publish(subject, JSON.stringify(body), { headers: messageHeaders });
  return { eventId, streamSequence: ack.seq };
}

export interface ResultSeen {
  readonly subject: string;
  readonly causationId: string | undefined;
  readonly correlationId: string | undefined;
  readonly eventId: string | undefined;
  readonly result: TaskResult;
}

/** Every task result stored (TASK_RESULTS), oldest first. */
export async function taskResults(connection: NatsConnection): Promise<ResultSeen[]> {
  return (await readStream(connection, "TASK_RESULTS")).map((message) => ({
    subject: message.subject,
    causationId: message.headers[EventHeader.causationId],
    correlationId: message.headers[EventHeader.correlationId],
    eventId: message.headers[EventHeader.eventId],
    result: TaskResult.parse(message.body),
  }));
}

/** The results of one task id (any machine). */
export async function resultsOf(connection: NatsConnection, taskId: string): Promise<ResultSeen[]> {
  return (await taskResults(connection)).filter((seen) => seen.result.taskId === taskId);
}

/** Every output chunk of `taskId` stored (TASK_OUTPUT), in stream order. */
export async function chunksOf(
  connection: NatsConnection,
  taskId: string,
): Promise<Array<TaskOutputChunk & { subject: string }>> {
  return (await readStream(connection, "TASK_OUTPUT"))
    .map((message) => ({ ...TaskOutputChunk.parse(message.body), subject: message.subject }))
    .filter((chunk) => chunk.taskId === taskId);
}

/** The output of a task as it was sent: each stream's chunks joined in `seq` order. */
export function joinedOutput(chunks: readonly TaskOutputChunk[]): { stdout: string; stderr: string } {
  const ordered = [...chunks].sort((a, b) => a.seq - b.seq);
  return {
    stdout: ordered
      .filter((chunk) => chunk.stream === "stdout")
      .map((chunk) => chunk.data)
      .join(""),
    stderr: ordered
      .filter((chunk) => chunk.stream === "stderr")
      .map((chunk) => chunk.data)
      .join(""),
  };
}
