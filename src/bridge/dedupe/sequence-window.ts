import * as z from "zod";

/**
 * Which of an outbox's recent sequence numbers (X-Sequence) a shard has already bridged.
 *
 * JetStream drops a duplicate `Nats-Msg-Id` only within its duplicate window. An agent whose ack
 * was lost, and which comes back after the window, publishes the event again: the stream then
 * holds two copies with the same X-Event-ID and X-Sequence. The agent republishes oldest first, at
 * most one outbox batch (500) behind the newest event it had delivered, so a window of the
 * newest WIDTH sequences tells every such copy from a first delivery. A sequence older than the
 * window cannot be judged: it is bridged (never lose) and counted.
 *
 * The seen sequences are kept as runs (`[from, to]`, inclusive, ascending, never touching): an
 * outbox delivers in order, so a window is nearly always one run, a few bytes in memory and in
 * the state record, however wide the window.
 */
export const SEQUENCE_WINDOW_WIDTH = 1024;

export type SequenceVerdict = "new" | "duplicate" | "too-old";

const Sequence = z.number().int().positive();

/** Runs ascending, apart (a gap between two), none above `high`: what a window's runs always are. */
export function runsAreWellFormed(high: number, runs: ReadonlyArray<readonly [number, number]>): boolean {
  let previousTo = -1;
  for (const [from, to] of runs) {
    if (from > to || to > high || from <= previousTo + 1) return false;
    previousTo = to;
  }
  return true;
}

export const SEQUENCE_WINDOW_SHAPE = {
  /** The highest sequence seen. */
  high: Sequence,
  /** The runs of seen sequences within (high - WIDTH, high]. */
  runs: z.array(z.tuple([Sequence, Sequence])).max(SEQUENCE_WINDOW_WIDTH),
};

/** A window as written to the shard's state topic. */
export const SequenceWindowSnapshot = z
  .object(SEQUENCE_WINDOW_SHAPE)
  .refine(({ high, runs }) => runsAreWellFormed(high, runs), "runs must be ascending, apart, and not above high");
export type SequenceWindowSnapshot = z.infer<typeof SequenceWindowSnapshot>;

export class SequenceWindow {
  #high: number;
  /** Flat pairs: from0, to0, from1, to1, ... */
  #runs: number[];

  constructor(snapshot?: SequenceWindowSnapshot) {
    this.#high = snapshot?.high ?? 0;
    this.#runs = snapshot ? snapshot.runs.flat() : [];
  }

  get high(): number {
    return this.#high;
  }

  verdict(sequence: number): SequenceVerdict {
    if (sequence > this.#high) return "new";
    if (sequence <= this.#high - SEQUENCE_WINDOW_WIDTH) return "too-old";
    return this.#indexOfRunHolding(sequence) >= 0 ? "duplicate" : "new";
  }

  record(sequence: number): void {
    if (sequence <= this.#high - SEQUENCE_WINDOW_WIDTH) return;
    this.#insert(sequence);
    if (sequence > this.#high) {
      this.#high = sequence;
      this.#forgetBelow(sequence - SEQUENCE_WINDOW_WIDTH + 1);
    }
  }

  snapshot(): SequenceWindowSnapshot {
    const runs: Array<[number, number]> = [];
    for (let index = 0; index < this.#runs.length; index += 2)
      runs.push([this.#runs[index] as number, this.#runs[index + 1] as number]);
    return { high: this.#high, runs };
  }

  clone(): SequenceWindow {
    const copy = new SequenceWindow();
    copy.#high = this.#high;
    copy.#runs = [...this.#runs];
    return copy;
  }

  #indexOfRunHolding(sequence: number): number {
    for (let index = this.#runs.length - 2; index >= 0; index -= 2) {
      if (sequence > (this.#runs[index + 1] as number)) return -1;
      if (sequence >= (this.#runs[index] as number)) return index;
    }
    return -1;
  }

  #insert(sequence: number): void {
    const runs = this.#runs;
    // Newest runs last, and most sequences extend the last one: search from the end.
    let index = runs.length - 2;
    while (index >= 0 && (runs[index] as number) > sequence) index -= 2;
    // `index` is the run starting at or below `sequence` (or -2: none).
    if (index >= 0 && sequence <= (runs[index + 1] as number)) return;
    const joinsLower = index >= 0 && (runs[index + 1] as number) === sequence - 1;
    const next = index + 2;
    const joinsUpper = next < runs.length && (runs[next] as number) === sequence + 1;
    if (joinsLower && joinsUpper) runs.splice(index + 1, 2);
    else if (joinsLower) runs[index + 1] = sequence;
    else if (joinsUpper) runs[next] = sequence;
    else runs.splice(next, 0, sequence, sequence);
  }

  #forgetBelow(lowest: number): void {
    const runs = this.#runs;
    let drop = 0;
    while (drop < runs.length && (runs[drop + 1] as number) < lowest) drop += 2;
    if (drop > 0) runs.splice(0, drop);
    if (runs.length > 0 && (runs[0] as number) < lowest) runs[0] = lowest;
  }
}

/** The window format before runs (bridge versions up to the per-shard state topics): a bit ring. */
export const LegacyRingSnapshot = z.object({ high: z.number().int().nonnegative(), seen: z.string() });
export type LegacyRingSnapshot = z.infer<typeof LegacyRingSnapshot>;

/** The same window from the legacy ring: bit `s mod WIDTH` set for each seen `s` in (high - WIDTH, high]. */
export function windowFromLegacyRing(legacy: LegacyRingSnapshot): SequenceWindow {
  const bits = Buffer.from(legacy.seen, "base64");
  const window = new SequenceWindow();
  if (bits.length !== SEQUENCE_WINDOW_WIDTH / 8) return window;
  for (let sequence = Math.max(1, legacy.high - SEQUENCE_WINDOW_WIDTH + 1); sequence <= legacy.high; sequence++) {
    const bit = sequence % SEQUENCE_WINDOW_WIDTH;
    if (((bits[bit >> 3] as number) & (1 << (bit & 7))) !== 0) window.record(sequence);
  }
  return window;
}
