import { AGENT_CONFIG_BUCKET } from "../contracts/index.ts";
import type { CommandRow } from "../outbox/index.ts";

/**
 * The `agent-config` keys of one machine (`defaults` and `machine.{id}`) are two `latest` command
 * feeds (contracts/command-feeds.ts): read by a direct get with the key in the subject, so a subject
 * permission confines the machine to its own keys, never a KV watcher (its consumers have generated
 * names) nor a KV get with the key in the request body.
 *
 * One more guard: nats-server does not check reply subjects against permissions, so any client may
 * ask the server to send its answer (a direct get of a key it may read, a publish ack) to
 * `$KV.agent-config.<another key>`, and in a one-account layout the bucket stores that answer as a
 * revision of that key. Such a revision is refused here, not applied: see `serverReplyProblem` (and
 * the command runner, which refuses a copy of a direct get's answer before this).
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

/** Told apart as published: an operation nobody defined is refused by the reader, not taken as a put. */
const KV_OPERATION = "KV-Operation";

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

/** A stored revision of a key, as the inbox holds it (the runner already refused server answers copied here). */
export function configEntryOfRow(key: string, row: CommandRow): ConfigEntry {
  const operation = row.headers[KV_OPERATION]?.at(-1) || "PUT";
  const problem = serverReplyProblem(false, row.body);
  return {
    key,
    revision: row.streamSequence,
    operation,
    value: row.body,
    refusal: problem ? `${AGENT_CONFIG_BUCKET}/${key} revision ${row.streamSequence} ${problem}` : null,
  };
}
