/**
 * At most one answer per (subject, reason) per interval to a command the whole fleet reads
 * (`machine.all.*`, the configuration defaults): one bad fleet-wide message must not make every
 * machine report again and again (a machine that can make the server store junk there would
 * otherwise turn each junk message into a status from every machine).
 */
export class AnswerLimiter {
  readonly #intervalMs: number;
  readonly #lastAnswered = new Map<string, number>();

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Whether to answer a refusal of `kind` on `subject` now; records the answer when it says yes. */
  mayAnswer(subject: string, kind: string, nowMs: number): boolean {
    for (const [key, atMs] of this.#lastAnswered) if (nowMs - atMs >= this.#intervalMs) this.#lastAnswered.delete(key);
    const key = `${subject}\u0000${kind}`;
    if (this.#lastAnswered.has(key)) return false;
    this.#lastAnswered.set(key, nowMs);
    return true;
  }
}

/** A refusal's kind: numbers (sequences, serials, sizes) differ from one junk message to the next; the kind does not. */
export function reasonKind(reason: string): string {
  return reason.replace(/\d+/g, "#");
}
