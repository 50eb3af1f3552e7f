/** What a stream reader does with one delivered message (see DeliveryOrder). */
export type Admission =
  /** The next message in stream order: hand it out. `missingBefore` messages were gone from the stream before it. */
  | { readonly kind: "take"; readonly missingBefore: number }
  /** Below the next expected sequence: a copy of one already handed out (a redelivery); drop it. */
  | { readonly kind: "copy" }
  /** Above the next expected sequence on a consumer already reading: something is still due; read again from the expected one. */
  | { readonly kind: "gap" };

/**
 * The gap logic of an ordered stream reader, apart from any server: which sequence comes next,
 * and what a delivered sequence means against it.
 *
 * Guarantee: sequences taken rise strictly, one by one, except across messages that were gone
 * from the stream. A consumer (re)made at the expected sequence delivers in stream order, so the
 * first message it gives is the next one that exists: a higher one there means the ones between
 * were gone (expired or deleted), and they are counted, never waited for. Later, a higher one
 * means a gap in delivery (a redelivery is due, or the server dropped what was in flight), and the
 * reader must be made again at the expected sequence rather than skip. A lower one is always a
 * copy, even as the first after repositioning (a late delivery of the consumer it replaced).
 */
export class DeliveryOrder {
  #expected: number;
  /** The consumer was (re)made at `#expected` and has not delivered yet: its first message is trusted. */
  #repositioned = true;
  readonly #filtered: boolean;
  /** Filtered: the consumer sequence of the last delivery taken, or null before the first. */
  #lastDelivery: number | null = null;

  /**
   * Reads from the sequence after `after` (0: from the start of the stream). `filtered`: the
   * consumer reads some of the stream's subjects only (a partition), so the stream sequences it
   * delivers skip the others by design: a gap is then told by the consumer's own sequence, which
   * rises by one with every delivery, skipping nothing (as nats.js's ordered consumer tells it).
   * What was gone from the stream cannot be told from what another filter reads, and is not counted.
   */
  constructor(after = 0, options: { readonly filtered?: boolean } = {}) {
    this.#expected = after + 1;
    this.#filtered = options.filtered === true;
  }

  /** The next sequence to hand out. */
  get expected(): number {
    return this.#expected;
  }

  /** The consumer was made again at `expected`: its first message says what exists from there. */
  repositioned(): void {
    this.#repositioned = true;
    this.#lastDelivery = null;
  }

  /** `deliverySequence`: the consumer's sequence of this delivery (what a filtered reader goes by). */
  admit(sequence: number, deliverySequence?: number): Admission {
    if (this.#filtered) return this.#admitFiltered(sequence, deliverySequence ?? 0);
    if (sequence < this.#expected) return { kind: "copy" };
    if (sequence > this.#expected && !this.#repositioned) return { kind: "gap" };
    const missingBefore = sequence - this.#expected;
    this.#repositioned = false;
    this.#expected = sequence + 1;
    return { kind: "take", missingBefore };
  }

  #admitFiltered(sequence: number, deliverySequence: number): Admission {
    // A copy as the first delivery after repositioning is a late one of the replaced consumer,
    // numbered by that consumer: it says nothing of this one's sequence.
    if (sequence < this.#expected && this.#lastDelivery === null) return { kind: "copy" };
    if (this.#lastDelivery !== null && deliverySequence !== this.#lastDelivery + 1) return { kind: "gap" };
    this.#lastDelivery = deliverySequence;
    if (sequence < this.#expected) return { kind: "copy" };
    this.#repositioned = false;
    this.#expected = sequence + 1;
    return { kind: "take", missingBefore: 0 };
  }
}
