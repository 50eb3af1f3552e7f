import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/**
 * A KV compare-and-set write refused because the key is not at the revision the writer named: it
 * moved on (another writer), it expired, or it exists (a create). Decided on JetStream's own error
 * codes, never on the message text.
 */
export function isRevisionConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
