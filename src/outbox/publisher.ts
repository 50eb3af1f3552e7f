/** What the transport says about one publish attempt. */
export type PublishOutcome =
  | { readonly kind: "acked"; readonly streamSequence: number; readonly duplicate: boolean }
  /** Try again later: no stream, no responders, timeout, disconnected. */
  | { readonly kind: "retry"; readonly reason: string }
  /** Never going to succeed: payload too large, permission denied, bad subject. */
  | { readonly kind: "rejected"; readonly reason: string };

/**
 * Publishing as the outbox's drainer sees it: one message, and what became of it. The outbox says
 * what it needs; transport implements it (transport/jetstream-publisher.ts).
 */
export interface EventPublisher {
  publish(
    subject: string,
    payload: Uint8Array,
    headers: ReadonlyArray<readonly [string, string]>,
    msgId: string,
  ): Promise<PublishOutcome>;
}
