import { ConnectionError, TimeoutError } from "@nats-io/nats-core";

/** Socket errors that mean no server answers there (yet): nothing is wrong with the agent's settings. */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * Whether a failed connect only means that no server could be reached: the expected offline case
 * (a laptop on a train, a server not up yet), as opposed to a server that answered and refused
 * (credentials, TLS) or a setting that cannot work. Decided on nats.js's error classes and the
 * socket's error code, never on message text.
 */
export function serverUnreachable(error: unknown): boolean {
  if (error instanceof TimeoutError) return true;
  const code = (value: unknown): unknown =>
    value !== null && typeof value === "object" ? (value as { code?: unknown }).code : undefined;
  if (error instanceof ConnectionError) return UNREACHABLE_CODES.has(String(code(error.cause)));
  return UNREACHABLE_CODES.has(String(code(error)));
}
