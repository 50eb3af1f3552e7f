import type { TaskOutputChunk } from "../../contracts/index.ts";

/** What a follower shows of one machine's output, in `seq` order. */
export type SequencedOutput =
  | { readonly kind: "chunk"; readonly chunk: TaskOutputChunk; readonly late: boolean }
  /** Chunks `fromSeq` to `toSeq` (inclusive) that did not come: lost on the machine or gone from the stream. */
  | { readonly kind: "gap"; readonly fromSeq: number; readonly toSeq: number };

/**
 * Puts one machine's output chunks back in `seq` order. The agent's outbox may deliver a chunk
 * after a later one (a retried publish), so a chunk past a hole is held until the hole fills, or
 * for `holdMs` at most: then the hole is shown as a gap and what was held goes out. A chunk of a
 * hole already shown comes out marked late; one seen before is dropped. Pure: time is given.
 */
export class ChunkSequencer {
  readonly #holdMs: number;
  #next = 0;
  readonly #held = new Map<number, TaskOutputChunk>();
  /** When the oldest held chunk came: the hole before it is declared `holdMs` later. */
  #holdingSinceMs: number | null = null;
  /** The holes shown as gaps, as inclusive ranges: a late chunk is taken out of its range. */
  #declaredMissing: Array<[number, number]> = [];
  #missing = 0;

  constructor(holdMs: number) {
    this.#holdMs = holdMs;
  }

  /** Chunks that never came (declared gaps less those that came late). */
  get missingCount(): number {
    return this.#missing;
  }

  /** How many chunks of `seq` 0 up have been shown or declared missing. */
  get settledCount(): number {
    return this.#next;
  }

  /** When `due` has something to release (monotonic ms), or null while nothing is held. */
  get dueAtMs(): number | null {
    return this.#holdingSinceMs === null ? null : this.#holdingSinceMs + this.#holdMs;
  }

  accept(chunk: TaskOutputChunk, nowMs: number): SequencedOutput[] {
    if (chunk.seq < this.#next) {
      if (!this.#takeFromDeclared(chunk.seq)) return [];
      this.#missing -= 1;
      return [{ kind: "chunk", chunk, late: true }];
    }
    if (chunk.seq > this.#next) {
      if (!this.#held.has(chunk.seq)) this.#held.set(chunk.seq, chunk);
      this.#holdingSinceMs ??= nowMs;
      return [];
    }
    this.#next += 1;
    return [{ kind: "chunk", chunk, late: false }, ...this.#releaseHeld(nowMs)];
  }

  /** Gives up on a hole held for `holdMs`: the gap, then what was held behind it. */
  due(nowMs: number): SequencedOutput[] {
    const dueAt = this.dueAtMs;
    if (dueAt === null || nowMs < dueAt) return [];
    return this.#skipToHeld(nowMs);
  }

  /**
   * The machine said how many chunks it sent (its result): everything held goes out, every hole
   * up to `totalChunks` is a gap.
   */
  finish(totalChunks: number, nowMs: number): SequencedOutput[] {
    const released: SequencedOutput[] = [];
    while (this.#held.size > 0) released.push(...this.#skipToHeld(nowMs));
    if (totalChunks > this.#next) {
      released.push(this.#declareGap(this.#next, totalChunks - 1));
      this.#next = totalChunks;
    }
    return released;
  }

  #skipToHeld(nowMs: number): SequencedOutput[] {
    const lowest = Math.min(...this.#held.keys());
    const gap = this.#declareGap(this.#next, lowest - 1);
    this.#next = lowest;
    return [gap, ...this.#releaseHeld(nowMs)];
  }

  #declareGap(fromSeq: number, toSeq: number): SequencedOutput {
    this.#declaredMissing.push([fromSeq, toSeq]);
    this.#missing += toSeq - fromSeq + 1;
    return { kind: "gap", fromSeq, toSeq };
  }

  #takeFromDeclared(seq: number): boolean {
    const index = this.#declaredMissing.findIndex(([from, to]) => from <= seq && seq <= to);
    if (index === -1) return false;
    const [from, to] = this.#declaredMissing[index] as [number, number];
    const rest: Array<[number, number]> = [];
    if (from < seq) rest.push([from, seq - 1]);
    if (seq < to) rest.push([seq + 1, to]);
    this.#declaredMissing.splice(index, 1, ...rest);
    return true;
  }

  /** The held chunks that now follow on: out in order; a hole still ahead is waited on from now. */
  #releaseHeld(nowMs: number): SequencedOutput[] {
    const released: SequencedOutput[] = [];
    for (let chunk = this.#held.get(this.#next); chunk; chunk = this.#held.get(this.#next)) {
      this.#held.delete(this.#next);
      released.push({ kind: "chunk", chunk, late: false });
      this.#next += 1;
    }
    this.#holdingSinceMs = this.#held.size === 0 ? null : nowMs;
    return released;
  }
}
