import { DeliverPolicy, type JsMsg, jetstreamManager } from "@nats-io/jetstream";
import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import {
  AGENT_CONFIG_BUCKET,
  AGENT_CONFIG_STREAM,
  type ConsumerBinding,
  configKeySubject,
} from "../contracts/index.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";
import { consumeDurable, type DurableConsumer } from "../transport/durable-consumer.ts";

/**
 * Reads the `agent-config` keys of one machine in ways a subject permission confines to those keys,
 * instead of a KV watcher (its consumers have generated names, so allowing them would let a machine
 * make one on any key) or a KV get in the form that carries the key in the request body:
 * - the current value: a direct get by subject, `$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.<key>`
 *   (the bucket must allow direct gets, as buckets made by nats.js and `nats kv add` on 2.9+ do);
 * - changes: the bucket's stream through a durable consumer of the machine's own name, whose filter
 *   is the key's subject (contracts/consumers.ts).
 *
 * One more guard: nats-server does not check reply subjects against permissions, so any client may
 * ask the server to send its answer (a direct get of a key it may read, a publish ack) to
 * `$KV.agent-config.<another key>`, and the bucket stores that answer as a revision of that key. Such
 * a revision is refused here, not applied: see `serverReplyProblem`.
 */

export interface ConfigEntry {
  readonly key: string;
  /** The KV revision: the stream sequence of the stored message. */
  readonly revision: number;
  /** The `KV-Operation` header: `PUT` (also when absent), `DEL`, `PURGE`, or whatever else someone published. */
  readonly operation: string;
  readonly value: Uint8Array;
  /** Why this stored message is not a value the platform put (then it is reported and never applied). */
  readonly refusal: string | null;
}

const KV_OPERATION = "KV-Operation";
/** Headers the server puts on a direct get answer and on nothing a client publishes. */
const SERVER_ANSWER_HEADER = "Nats-Subject";

function operationOf(headers: MsgHdrs | undefined): string {
  // Told apart as published: an operation nobody defined is refused by the reader, not taken as a put.
  return headers?.get(KV_OPERATION) || "PUT";
}

/**
 * Why a stored revision is a server's answer sent here rather than a put: `copiedHeaders` says
 * whether the stored message itself carries the server's answer headers (a direct get of another
 * key answered into this one), and a body that is a JetStream publish ack or API response is one
 * too. Null for an ordinary value.
 */
export function serverReplyProblem(copiedHeaders: boolean, value: Uint8Array): string | null {
  if (copiedHeaders)
    return "is a copy of another stored message (a server's answer sent to this key), not a value put here";
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(value));
  } catch {
    return null;
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) return null;
  const fields = body as Record<string, unknown>;
  const keys = Object.keys(fields);
  const apiResponse = typeof fields.type === "string" && fields.type.startsWith("io.nats.");
  const publishAck =
    typeof fields.stream === "string" &&
    typeof fields.seq === "number" &&
    keys.every((key) => ["stream", "seq", "duplicate", "domain"].includes(key));
  const apiError =
    typeof fields.error === "object" &&
    fields.error !== null &&
    "err_code" in fields.error &&
    keys.every((key) => ["error", "type", "stream"].includes(key));
  return apiResponse || publishAck || apiError
    ? "is a NATS server's answer (a publish ack or API response) sent to this key, not a value put here"
    : null;
}

function entry(
  key: string,
  revision: number,
  headers: MsgHdrs | undefined,
  value: Uint8Array,
  copiedHeaders: boolean,
): ConfigEntry {
  const operation = operationOf(headers);
  const problem = serverReplyProblem(copiedHeaders, value);
  return {
    key,
    revision,
    operation,
    value,
    refusal: problem ? `${AGENT_CONFIG_BUCKET}/${key} revision ${revision} ${problem}` : null,
  };
}

/** The current value of one key (null when it has none), by direct get with the key in the subject. */
export async function readConfigKey(connection: NatsConnection, key: string): Promise<ConfigEntry | null> {
  const manager = await jetstreamManager(connection, { checkAPI: false });
  const stored = await manager.direct.getMessage(AGENT_CONFIG_STREAM, { last_by_subj: configKeySubject(key) });
  if (!stored) return null;
  // The answer carries the server's own Nats-Subject; a second one was stored with the message.
  const copied = stored.header.values(SERVER_ANSWER_HEADER).length > 1;
  return entry(key, stored.seq, stored.header, stored.data, copied);
}

/** A delivered revision of a key (its headers are the stored message's own). */
export function configEntryOf(key: string, message: JsMsg): ConfigEntry {
  return entry(key, message.seq, message.headers, message.data, message.headers?.has(SERVER_ANSWER_HEADER) ?? false);
}

/** Every new revision of one key, through the machine's own durable consumer on the bucket's stream. */
export function watchConfigKey(options: {
  readonly connection: NatsConnection;
  readonly key: string;
  readonly binding: ConsumerBinding;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly onEntry: (entry: ConfigEntry) => Promise<void>;
}): DurableConsumer {
  const { key, logger } = options;
  return consumeDurable({
    connection: options.connection,
    ...options.binding,
    // Made once: the key's last value, then every change; the agent skips revisions it has seen.
    deliverPolicy: DeliverPolicy.LastPerSubject,
    logger,
    clock: options.clock,
    handle: async (message) => {
      try {
        await options.onEntry(configEntryOf(key, message));
      } catch (error) {
        // Reading it again would fail the same way: the outcome is in the log and config.status.
        logger.error({ err: error, key, revision: message.seq }, "cannot take a configuration revision");
      }
      message.ack();
    },
  });
}
