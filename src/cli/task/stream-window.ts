import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { readableHeaderValues } from "./readable-headers.ts";

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
 * the moment of the call, oldest first, at most `keepNewest` of them (the newest). Each subject is
 * read by an ephemeral consumer of our own filtered to it alone, which says how many there are
 * before the first is read, so the read ends when they are in, never on a wait; it is deleted after
 * (and would go by itself 30 s after its last use). One subject per consumer because nats-server
 * 2.10 counts a consumer of several filter subjects short when it starts at a time (2.10.27 said 1
 * of a task and its cancel, and the cancel was never read); 2.11 and later count it right.
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
  const kept: WindowMessage[] = [];
  let read = 0;
  for (const subject of new Set(window.subjects)) {
    const ofSubject = await readSubject(manager, js, { ...window, subject });
    read += ofSubject.read;
    kept.push(...ofSubject.kept);
  }
  // Each subject kept its own newest; the window's newest are among them.
  kept.sort((a, b) => a.sequence - b.sequence);
  const dropped = Math.max(0, read - window.keepNewest);
  return { messages: kept.slice(-window.keepNewest), dropped };
}

/** One subject of a window: its newest `keepNewest` selected messages, and how many were read. */
async function readSubject(
  manager: JetStreamManager,
  js: JetStreamClient,
  window: {
    readonly stream: string;
    readonly subject: string;
    readonly sinceMs: number;
    readonly keepNewest: number;
    readonly headerName: string;
    readonly select?: (message: WindowMessage) => boolean;
  },
): Promise<{ kept: WindowMessage[]; read: number }> {
  const info = await manager.consumers.add(window.stream, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(window.sinceMs).toISOString(),
    filter_subject: window.subject,
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
  return { kept: kept.slice(-window.keepNewest), read };
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
    machineIdHeaders: readableHeaderValues(message, headerName),
    body,
  };
}
