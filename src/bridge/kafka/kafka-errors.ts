import { withErrorCodes } from "../../runtime/index.ts";

/**
 * What a Kafka failure means for the bridge. Every client error is one of:
 * - `fenced`: another producer took this transactional id (a new owner of the shard), or the
 *   broker aborted our transaction (timed out): stop, and go on only if the shard is still ours;
 * - `too-large`: a record or batch over the broker's limit: those records are dead letters;
 * - `fatal`: will never succeed however long we wait (not authorised, bad credentials,
 *   unsupported broker): the bridge stops with a clear line;
 * - `retriable`: everything else (broker down, leader moving, timeouts): back off and try again.
 */
export type KafkaFailureKind = "fenced" | "too-large" | "fatal" | "retriable";

const FENCED = new Set([
  "PRODUCER_FENCED",
  "INVALID_PRODUCER_EPOCH",
  "INVALID_PRODUCER_ID_MAPPING",
  "TRANSACTIONAL_ID_NOT_FOUND",
  "INVALID_TXN_STATE",
]);
const TOO_LARGE = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"]);
const FATAL = new Set([
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "SASL_AUTHENTICATION_FAILED",
  "UNSUPPORTED_SASL_MECHANISM",
  "ILLEGAL_SASL_STATE",
  "UNSUPPORTED_VERSION",
  "TOPIC_DELETION_DISABLED",
  "INVALID_REPLICATION_FACTOR",
  "POLICY_VIOLATION",
]);

interface ErrorShape {
  readonly code?: unknown;
  readonly apiId?: unknown;
  readonly errors?: unknown;
  readonly cause?: unknown;
}

/** The broker error ids (e.g. PRODUCER_FENCED) and client codes found anywhere in an error tree. */
export function kafkaErrorIds(error: unknown): Set<string> {
  const ids = new Set<string>();
  const visit = (node: unknown, depth: number): void => {
    if (node === null || typeof node !== "object" || depth > 8) return;
    const shape = node as ErrorShape;
    if (typeof shape.apiId === "string") ids.add(shape.apiId);
    if (typeof shape.code === "string") ids.add(shape.code);
    if (Array.isArray(shape.errors)) for (const child of shape.errors) visit(child, depth + 1);
    if (shape.cause !== undefined) visit(shape.cause, depth + 1);
  };
  visit(error, 0);
  return ids;
}

export function classifyKafkaError(error: unknown): KafkaFailureKind {
  const ids = kafkaErrorIds(error);
  const has = (set: ReadonlySet<string>): boolean => [...ids].some((id) => set.has(id));
  if (has(FATAL) || ids.has("PLT_KFK_AUTHENTICATION")) return "fatal";
  if (has(TOO_LARGE)) return "too-large";
  if (has(FENCED)) return "fenced";
  return "retriable";
}

/** One line for the log: the client's message and the broker's error ids. */
export function describeKafkaError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // The client library's own codes (PLT_KFK_*) say nothing an operator can act on.
  const ids = [...kafkaErrorIds(error)].filter((id) => !id.startsWith("PLT_KFK_"));
  return withErrorCodes(
    message,
    ids.filter((id) => id.startsWith("EDGE_")),
    { name: "Kafka", ids: ids.filter((id) => !id.startsWith("EDGE_")) },
  );
}
