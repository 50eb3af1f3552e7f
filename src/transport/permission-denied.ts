import { PermissionViolationError } from "@nats-io/nats-core";

/**
 * Whether a NATS operation failed because the server refused this identity the subject (a
 * request's publish or a subscription). nats.js hands a request's refusal over as the cause of a
 * RequestError.
 */
export function isPermissionDenied(error: unknown): boolean {
  for (
    let current: unknown = error, depth = 0;
    current instanceof Error && depth < 4;
    current = current.cause, depth++
  ) {
    if (current instanceof PermissionViolationError) return true;
  }
  return false;
}
