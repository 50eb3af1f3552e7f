/**
 * Which of a machine's recent sequence numbers (X-Sequence) a shard has already bridged.
 *
 * JetStream drops a duplicate `Nats-Msg-Id` only within its duplicate window. An agent whose ack
 * was lost, and which comes back after the window, publishes the event again: the stream then
 * holds two copies with the same X-Event-ID and X-Sequence. The agent republishes oldest first, at
 * most one outbox batch (500) behind the newest event it had delivered, so a window of the
 * newest WIDTH sequences per machine tells every such copy from a first delivery. A sequence older
 * than the window cannot be judged: it is bridged (never lose) and counted.
 *
 * The bits are a ring: sequence `s` lives at bit `s mod WIDTH`, valid while `s` is in
 * (high - WIDTH, high]. The snapshot is what the bridge writes into Kafka with every transaction.
 */
export const SEQUENCE_WINDOW_WIDTH = 1024;
const BYTES = SEQUENCE_WINDOW_WIDTH / 8;

export type SequenceVerdict = "new" | "duplicate" | "too-old";

export interface SequenceWindowSnapshot {
  readonly high: number;
  /** base64 of the ring. */
  readonly seen: string;
}

export class SequenceWindow {
  #high: number;
  readonly #bits: Uint8Array;

  constructor(snapshot?: SequenceWindowSnapshot) {
    this.#high = snapshot?.high ?? 0;
    this.#bits = new Uint8Array(BYTES);
    if (snapshot) {
      const restored = Buffer.from(snapshot.seen, "base64");
      if (restored.length === BYTES) this.#bits.set(restored);
    }
  }

  get high(): number {
    return this.#high;
  }

  verdict(sequence: number): SequenceVerdict {
    if (sequence > this.#high) return "new";
    if (sequence <= this.#high - SEQUENCE_WINDOW_WIDTH) return "too-old";
    return this.#get(sequence) ? "duplicate" : "new";
  }

  record(sequence: number): void {
    if (sequence > this.#high) {
      // Forget what slides out of the window: the ring positions of high+1 .. sequence.
      const advance = sequence - this.#high;
      if (advance >= SEQUENCE_WINDOW_WIDTH) this.#bits.fill(0);
      else for (let cleared = this.#high + 1; cleared <= sequence; cleared++) this.#set(cleared, false);
      this.#high = sequence;
    }
    if (sequence > this.#high - SEQUENCE_WINDOW_WIDTH) this.#set(sequence, true);
  }

  snapshot(): SequenceWindowSnapshot {
    return { high: this.#high, seen: Buffer.from(this.#bits).toString("base64") };
  }

  clone(): SequenceWindow {
    return new SequenceWindow(this.snapshot());
  }

  #get(sequence: number): boolean {
    const bit = sequence % SEQUENCE_WINDOW_WIDTH;
    return ((this.#bits[bit >> 3] as number) & (1 << (bit & 7))) !== 0;
  }

  #set(sequence: number, value: boolean): void {
    const bit = sequence % SEQUENCE_WINDOW_WIDTH;
    const index = bit >> 3;
    const mask = 1 << (bit & 7);
    this.#bits[index] = value ? (this.#bits[index] as number) | mask : (this.#bits[index] as number) & ~mask;
  }
}
