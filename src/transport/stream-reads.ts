import {
  AckPolicy,
  DeliverPolicy,
  type DirectMsgRequest,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { NoRespondersError } from "@nats-io/nats-core";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { EdgeError } from "../errors/index.ts";

/**
 * The ways an agent reads a command stream. The first two are scoped by the request's SUBJECT to
 * what the machine's permission set names (so `edge-agent permissions` stays exact):
 * - the newest message of one subject: a direct get with the subject appended
 *   (`$JS.API.DIRECT.GET.<stream>.<subject>`; the server refuses a body there, so no other subject
 *   and no older message can be asked for);
 * - every message of one subject after a sequence: a consumer of the machine's own name, created
 *   with the subject in the create request's subject (which pins the filter), in memory, one
 *   replica, without acks, removed after the read (and dropped by the server after
 *   `inactive_threshold` if the agent dies first). Nothing of it outlives the catch-up.
 * The third is not: the next message of a subject after a sequence, by a direct get whose request
 * is in its BODY (`$JS.API.DIRECT.GET.<stream>`, `{seq, next_by_subj}`). A permission cannot narrow
 * a body, so that request can ask for any message of the stream: it is used only on a stream that
 * holds nothing but fleet-wide subjects (FLEET_TASKS), where every message is every machine's to read.
 */

export interface StoredCommandMessage {
  readonly stream: string;
  readonly streamSequence: number;
  readonly subject: string;
  readonly headers: Record<string, string[]>;
  readonly body: Uint8Array;
  readonly storedAtMs: number;
}

/** The server has no such stream, or it does not answer direct gets: the platform has not set it up. */
export class StreamUnavailableError extends EdgeError {
  readonly code = "EDGE_STREAM_UNAVAILABLE";
  constructor(stream: string, detail: string, options?: { cause?: unknown }) {
    super(
      `stream ${stream} cannot be read (${detail}): run \`edge-agent dev-setup\` or ask the platform to create it`,
      options,
    );
    this.name = "StreamUnavailableError";
  }
}

const NANOS_PER_MS = 1_000_000;
/** How long a catch-up consumer the agent could not remove stays on the server. */
const CATCH_UP_INACTIVE_MS = 30_000;

function headersOf(headers: MsgHdrs | undefined): Record<string, string[]> {
  const result: Record<string, string[]> = {};
  if (!headers) return result;
  for (const key of headers.keys()) result[key] = headers.values(key);
  return result;
}

async function managerOf(connection: NatsConnection, timeoutMs: number): Promise<JetStreamManager> {
  // No account-info check ($JS.API.INFO): a least-privilege identity has no right to it.
  return jetstreamManager(connection, { checkAPI: false, timeout: timeoutMs });
}

/** No responder: nats.js wraps it in a RequestError, its cause. */
function isNoResponders(error: unknown): boolean {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof NoRespondersError) return true;
  }
  return false;
}

/** The newest message stored under `subject`, or null when the stream holds none. */
export function readNewest(
  connection: NatsConnection,
  stream: string,
  subject: string,
  timeoutMs = 5_000,
): Promise<StoredCommandMessage | null> {
  // nats.js puts a `last_by_subj` request in the subject, never in the body.
  return directGet(connection, stream, { last_by_subj: subject }, timeoutMs);
}

/**
 * The first message stored under `subject` after `afterSequence`, or null when there is none: a
 * direct get in the request's body, no consumer (see above for the one stream it may be used on).
 */
export function readNextAfter(
  connection: NatsConnection,
  stream: string,
  subject: string,
  afterSequence: number,
  timeoutMs = 5_000,
): Promise<StoredCommandMessage | null> {
  return directGet(connection, stream, { seq: afterSequence + 1, next_by_subj: subject }, timeoutMs);
}

async function directGet(
  connection: NatsConnection,
  stream: string,
  query: DirectMsgRequest,
  timeoutMs: number,
): Promise<StoredCommandMessage | null> {
  const manager = await managerOf(connection, timeoutMs);
  let message: Awaited<ReturnType<JetStreamManager["direct"]["getMessage"]>>;
  try {
    message = await manager.direct.getMessage(stream, query);
  } catch (error) {
    if (isNoResponders(error)) throw new StreamUnavailableError(stream, "no direct get answers", { cause: error });
    throw error;
  }
  if (!message) return null;
  return {
    stream,
    streamSequence: message.seq,
    subject: message.subject,
    headers: headersOf(message.header),
    body: message.data,
    storedAtMs: message.timestamp ? message.time.getTime() : 0,
  };
}

export interface CatchUpRequest {
  readonly stream: string;
  readonly subject: string;
  /** Messages after this stream sequence are read. */
  readonly afterSequence: number;
  /** The machine's own consumer name (contracts/command-feeds.ts: catchUpConsumerName). */
  readonly consumerName: string;
  /** At most this many messages per call; the caller reads again from the last one for more. */
  readonly limit: number;
  readonly timeoutMs?: number;
}

export interface CatchUpResult {
  readonly messages: StoredCommandMessage[];
  /** Messages of the subject the consumer still had after those returned. */
  readonly remaining: number;
}

const isCode = (error: unknown, ...codes: number[]): boolean =>
  error instanceof JetStreamApiError && codes.includes(error.code);

/** nats-server's codes for a consumer name already taken (nats.js names only a few codes). */
const CONSUMER_NAME_TAKEN = [10013, 10105, 10148];

/** Reads up to `limit` messages of `subject` after `afterSequence` through a catch-up consumer, then removes it. */
export async function readAfter(connection: NatsConnection, request: CatchUpRequest): Promise<CatchUpResult> {
  const timeoutMs = request.timeoutMs ?? 5_000;
  const manager = await managerOf(connection, timeoutMs);
  const config = {
    name: request.consumerName,
    filter_subject: request.subject,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: request.afterSequence + 1,
    ack_policy: AckPolicy.None,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: CATCH_UP_INACTIVE_MS * NANOS_PER_MS,
  };
  let info: Awaited<ReturnType<JetStreamManager["consumers"]["add"]>>;
  try {
    info = await manager.consumers.add(request.stream, config);
  } catch (error) {
    if (isCode(error, JetStreamApiCodes.StreamNotFound)) {
      throw new StreamUnavailableError(request.stream, "no such stream", { cause: error });
    }
    // One left by a run that died mid-read (another start position): removed, then made again.
    if (!isCode(error, ...CONSUMER_NAME_TAKEN)) throw error;
    await manager.consumers.delete(request.stream, request.consumerName);
    info = await manager.consumers.add(request.stream, config);
  }
  const messages: StoredCommandMessage[] = [];
  let remaining = info.num_pending;
  try {
    if (remaining > 0) {
      const consumer = await jetstream(connection, { checkAPI: false, timeout: timeoutMs }).consumers.get(
        request.stream,
        request.consumerName,
      );
      const batch = await consumer.fetch({ max_messages: Math.min(request.limit, remaining), expires: timeoutMs });
      for await (const message of batch) {
        messages.push({
          stream: request.stream,
          streamSequence: message.seq,
          subject: message.subject,
          headers: headersOf(message.headers),
          body: message.data,
          storedAtMs: Math.floor(message.info.timestampNanos / NANOS_PER_MS),
        });
        remaining = message.info.pending;
        if (remaining === 0 || messages.length >= request.limit) break;
      }
    }
  } finally {
    await manager.consumers.delete(request.stream, request.consumerName).catch(() => undefined);
  }
  return { messages, remaining };
}
