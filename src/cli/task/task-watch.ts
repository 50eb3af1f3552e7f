import type { TaskOutputChunk, TaskResult, TaskStatus } from "../../contracts/index.ts";
import { ChunkSequencer, type SequencedOutput } from "./chunk-sequencer.ts";

/** What the follower shows, machine by machine, in the order to show it. */
export type WatchEvent =
  | { readonly kind: "output"; readonly machineId: string; readonly output: SequencedOutput }
  | { readonly kind: "end"; readonly machineId: string; readonly result: TaskResult; readonly missingChunks: number };

export interface TaskSummary {
  /** Machines heard from: output, an end, or both. */
  readonly machines: number;
  readonly ends: Readonly<Record<TaskStatus, number>>;
  /** Machines that sent output but no end (still running, or their end is still on its way). */
  readonly silent: readonly string[];
  /** Output chunks that never came, over every machine. */
  readonly missingChunks: number;
}

export interface TaskWatchOptions {
  /** How long a chunk past a hole waits for the hole to fill before the hole is shown as a gap. */
  readonly holdMs: number;
  /** How long an end waits for the chunks it counts that have not come yet. */
  readonly endGraceMs: number;
}

interface MachineState {
  readonly sequencer: ChunkSequencer;
  result: TaskResult | null;
  resultAtMs: number;
  ended: boolean;
}

/**
 * One task's progress on every machine that answers: its output in `seq` order with the gaps
 * shown, then its end, once. An end waits (`endGraceMs` at most) for the chunks it counts, since
 * output and ends come through two streams and either may be read first. Pure: time is given.
 */
export class TaskWatch {
  readonly #options: TaskWatchOptions;
  readonly #machines = new Map<string, MachineState>();

  constructor(options: TaskWatchOptions) {
    this.#options = options;
  }

  chunk(machineId: string, chunk: TaskOutputChunk, nowMs: number): WatchEvent[] {
    const state = this.#machine(machineId);
    const events = this.#outputs(machineId, state.sequencer.accept(chunk, nowMs));
    return state.result && !state.ended && this.#allChunksIn(state)
      ? [...events, ...this.#end(machineId, state, nowMs)]
      : events;
  }

  /** A machine's end. A second one for the same machine (a copy stored again) is not shown twice. */
  result(machineId: string, result: TaskResult, nowMs: number): WatchEvent[] {
    const state = this.#machine(machineId);
    if (state.result) return [];
    state.result = result;
    state.resultAtMs = nowMs;
    return this.#allChunksIn(state) ? this.#end(machineId, state, nowMs) : [];
  }

  /** Holes given up on and ends that waited long enough. */
  tick(nowMs: number): WatchEvent[] {
    const events: WatchEvent[] = [];
    for (const [machineId, state] of this.#machines) {
      events.push(...this.#outputs(machineId, state.sequencer.due(nowMs)));
      if (
        state.result &&
        !state.ended &&
        (this.#allChunksIn(state) || nowMs >= state.resultAtMs + this.#options.endGraceMs)
      )
        events.push(...this.#end(machineId, state, nowMs));
    }
    return events;
  }

  hasEnded(machineId: string): boolean {
    return this.#machines.get(machineId)?.ended === true;
  }

  summary(): TaskSummary {
    const ends: Record<TaskStatus, number> = { SUCCEEDED: 0, FAILED: 0, TIMED_OUT: 0, CANCELLED: 0, REJECTED: 0 };
    const silent: string[] = [];
    let missingChunks = 0;
    for (const [machineId, state] of this.#machines) {
      missingChunks += state.sequencer.missingCount;
      if (state.ended && state.result) ends[state.result.status] += 1;
      else silent.push(machineId);
    }
    return { machines: this.#machines.size, ends, silent: silent.sort(), missingChunks };
  }

  /** Every machine heard from whose end is in but not shown yet, shown now (the follower stops). */
  flush(nowMs: number): WatchEvent[] {
    const events: WatchEvent[] = [];
    for (const [machineId, state] of this.#machines)
      if (state.result && !state.ended) events.push(...this.#end(machineId, state, nowMs));
    return events;
  }

  #machine(machineId: string): MachineState {
    let state = this.#machines.get(machineId);
    if (!state) {
      state = { sequencer: new ChunkSequencer(this.#options.holdMs), result: null, resultAtMs: 0, ended: false };
      this.#machines.set(machineId, state);
    }
    return state;
  }

  #allChunksIn(state: MachineState): boolean {
    return (
      state.result !== null && state.sequencer.settledCount >= state.result.chunks && state.sequencer.dueAtMs === null
    );
  }

  #end(machineId: string, state: MachineState, nowMs: number): WatchEvent[] {
    const result = state.result as TaskResult;
    const events = this.#outputs(machineId, state.sequencer.finish(result.chunks, nowMs));
    state.ended = true;
    return [...events, { kind: "end", machineId, result, missingChunks: state.sequencer.missingCount }];
  }

  #outputs(machineId: string, outputs: readonly SequencedOutput[]): WatchEvent[] {
    return outputs.map((output) => ({ kind: "output", machineId, output }));
  }
}
