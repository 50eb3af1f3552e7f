import { JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { errors as natsErrors, headers as natsHeaders } from "@nats-io/transport-node";
import type { EventPublisher, PublishOutcome } from "../outbox/index.ts";

/** The retry reason of a publish no stream took: the server lacks the platform's streams (or JetStream). */
export const NO_STREAM_REASON = "no stream stores this subject (or JetStream is off)";

/** JetStream API errors that will never succeed on retry: the server refuses the message itself. */
const PERMANENT_API_CODES = new Set([
  10054, // message size exceeds the stream's maximum
  10071, // wrong last sequence (never used by us; a retry cannot fix it)
]);

/**
 * Sorts a failed publish into "try again" and "never going to work", so the outbox can keep the
 * first and dead-letter the second. Anything unknown is retried: losing data is worse than a
 * stuck event, which the outbox reports.
 */
export function classifyPublishError(error: unknown): PublishOutcome {
  const reason = error instanceof Error ? error.message : String(error);
  if (error instanceof natsErrors.PermissionViolationError)
    return { kind: "rejected", reason: `permission denied: ${reason}` };
  if (error instanceof natsErrors.InvalidSubjectError)
    return { kind: "rejected", reason: `invalid subject: ${reason}` };
  // On our publishes (a timeout of at least 1 ms, no reply subject) nats.js refuses an argument for
  // one thing only: a message larger than the server's max_payload (pinned by the outbox's delivery
  // test against a real server). Decided on the class, never on its words.
  if (error instanceof natsErrors.InvalidArgumentError)
    return { kind: "rejected", reason: `payload larger than the server's max_payload: ${reason}` };
  if (error instanceof JetStreamApiError && PERMANENT_API_CODES.has(error.code)) return { kind: "rejected", reason };
  // nats.js reports a publish nobody stored (no stream for the subject) as "JetStream not enabled",
  // caused by a no-responders RequestError.
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof natsErrors.RequestError && cause.isNoResponders())
    return { kind: "retry", reason: NO_STREAM_REASON };
  return { kind: "retry", reason };
}

export function createJetStreamPublisher(js: JetStreamClient, options: { timeoutMs?: number } = {}): EventPublisher {
  const timeout = options.timeoutMs ?? 5_000;
  return {
    async publish(subject, payload, headerEntries, msgId) {
      const headers = natsHeaders();
      for (const [name, value] of headerEntries) headers.set(name, value);
      try {
        const ack = await js.publish(subject, payload, { msgID: msgId, headers, timeout });
        return { kind: "acked", streamSequence: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        return classifyPublishError(error);
      }
    },
  };
}
