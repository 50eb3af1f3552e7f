import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";

/** One stored message as a listing reads it. */
export interface WindowMessage {
  readonly subject: string;
  readonly sequence: number;
  readonly storedAtMs: number;
  readonly machineIdHeaders: readonly string[];
  readonly body: unknown;
}

const BATCH = 1_000;

/**
 * Every message a stream stored on `subjects` from `sinceMs` (the server's storage time) up to
 * the moment of the call, oldest first, at most `keepNewest` of them (the newest). An ephemeral
 * consumer of our own says how many there are before the first is read, so the read ends when
 * they are in, never on a wait; it is deleted after (and would go by itself 30 s after its last use).
 */
export async function readWindow(
  manager: JetStreamManager,
  js: JetStreamClient,
  window: {
    readonly stream: string;
    readonly subjects: readonly string[];
    readonly sinceMs: number;
    readonly keepNewest: number;
    readonly headerName: string;
    /** Only these are kept (the rest is read and dropped): what a listing needs of a large window. */
    readonly select?: (message: WindowMessage) => boolean;
  },
): Promise<{ messages: WindowMessage[]; dropped: number }> {
  const info = await manager.consumers.add(window.stream, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(window.sinceMs).toISOString(),
    filter_subjects: [...window.subjects],
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(30_000),
  });
  const total = info.num_pending;
  const kept: WindowMessage[] = [];
  let read = 0;
  try {
    const consumer = await js.consumers.get(window.stream, info.name);
    while (read < total) {
      const batch = await consumer.fetch({ max_messages: Math.min(BATCH, total - read), expires: 5_000 });
      let got = 0;
      for await (const message of batch) {
        got += 1;
        read += 1;
        const taken = windowMessageOf(message, window.headerName);
        if (window.select && !window.select(taken)) continue;
        kept.push(taken);
        // Keep only the newest: drop the oldest in blocks, so the copy costs little.
        if (kept.length >= window.keepNewest * 2) kept.splice(0, kept.length - window.keepNewest);
      }
      // The stream lost what was left (deleted, expired) while we read: nothing more will come.
      if (got === 0) break;
    }
  } finally {
    await manager.consumers.delete(window.stream, info.name).catch(() => undefined);
  }
  const dropped = Math.max(0, read - window.keepNewest);
  return { messages: kept.slice(-window.keepNewest), dropped };
}

function windowMessageOf(message: JsMsg, headerName: string): WindowMessage {
  let body: unknown;
  try {
    body = message.json<unknown>();
  } catch {
    body = undefined;
  }
  return {
    subject: message.subject,
    sequence: message.seq,
    storedAtMs: Math.floor(message.info.timestampNanos / 1_000_000),
    machineIdHeaders: message.headers?.values(headerName) ?? [],
    body,
  };
}
