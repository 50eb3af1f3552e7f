import * as z from "zod";
import { runsAreWellFormed, SEQUENCE_WINDOW_SHAPE, type SequenceVerdict, SequenceWindow } from "./sequence-window.ts";

/**
 * A shard's dedupe windows, one per outbox life: the key is `<machineId>/<outboxId>` (outbox id
 * empty for events without X-Outbox-ID, an agent from before it), so a machine reinstalled with
 * the same id, whose new outbox numbers from 1 again, is never judged by its old life's window.
 *
 * Eviction: a window no event touched for `idleMs` of stream time (the times JetStream stored the
 * events, not this host's clock) is forgotten, and a tombstone for it goes into the same
 * transaction, so compaction removes it from the state topic too. The fallback, stated: a copy of
 * an event that arrives after its window was evicted is judged against an empty window and
 * bridged again (a duplicate in Kafka carrying the same X-Event-ID, which Pinot's dedup on the
 * event id drops), never lost. `idleMs` must exceed how long an agent may hold an event and
 * publish it again: its outbox's maximum age (7 days by default).
 *
 * Layering: a batch is judged on a draft over the committed windows and the drafts of batches
 * prepared before it and not yet committed; `commit` makes a draft's windows the committed ones,
 * `discardUncommitted` forgets every draft (their transactions failed).
 */
export const DedupeWindowRecord = z
  .object({
    ...SEQUENCE_WINDOW_SHAPE,
    /** Stream time (epoch ms) of the newest event that touched the window. */
    lastAtMs: z.number().int().nonnegative(),
  })
  .refine(({ high, runs }) => runsAreWellFormed(high, runs), "runs must be ascending, apart, and not above high");
export type DedupeWindowRecord = z.infer<typeof DedupeWindowRecord>;

export const DEFAULT_WINDOW_IDLE_MS = 8 * 24 * 3600 * 1000;
/** Tombstones one transaction may carry at most: eviction catches up over several batches. */
const MAX_EVICTIONS_PER_BATCH = 1_000;

interface Entry {
  readonly window: SequenceWindow;
  readonly lastAtMs: number;
}

/** What a transaction changes in the windows: a new value, or null for an evicted window. */
export interface WindowChange {
  readonly key: string;
  readonly value: DedupeWindowRecord | null;
}

export class DedupeWindows {
  readonly #idleMs: number;
  /** Least recently touched first (a touch moves a window to the end). */
  #committed = new Map<string, Entry>();
  #newestAtMs = 0;
  /** Drafts prepared and not yet committed, oldest first. */
  #pending: WindowDraft[] = [];

  constructor(options: { idleMs?: number } = {}) {
    this.#idleMs = options.idleMs ?? DEFAULT_WINDOW_IDLE_MS;
  }

  get size(): number {
    return this.#committed.size;
  }

  get idleMs(): number {
    return this.#idleMs;
  }

  /** Replaces everything with the windows read back at a takeover (in the order they were written). */
  load(records: Iterable<readonly [string, DedupeWindowRecord]>): void {
    this.#committed = new Map();
    this.#pending = [];
    this.#newestAtMs = 0;
    for (const [key, record] of records) {
      this.#committed.delete(key);
      this.#committed.set(key, {
        window: new SequenceWindow({ high: record.high, runs: record.runs }),
        lastAtMs: record.lastAtMs,
      });
      this.#newestAtMs = Math.max(this.#newestAtMs, record.lastAtMs);
    }
  }

  /** A draft for the next batch, on top of every draft not yet committed. */
  draft(): WindowDraft {
    const draft = new WindowDraft(this, [...this.#pending]);
    this.#pending.push(draft);
    return draft;
  }

  /** The draft's transaction committed (drafts commit in the order they were made). */
  commit(draft: WindowDraft): void {
    const index = this.#pending.indexOf(draft);
    if (index < 0) return;
    const committed = this.#pending.splice(0, index + 1);
    // A draft made while these were pending holds them: now they are in #committed, it must let
    // go, or each draft keeps the one before it and a bridge under load keeps every batch's windows.
    draft.forgetCommitted(committed);
    for (const pending of this.#pending) pending.forgetCommitted(committed);
    for (const [key, entry] of draft.touched) {
      this.#committed.delete(key);
      this.#committed.set(key, entry);
    }
    for (const key of draft.evicted) this.#committed.delete(key);
    this.#newestAtMs = Math.max(this.#newestAtMs, draft.newestAtMs);
  }

  discardUncommitted(): void {
    this.#pending = [];
  }

  clear(): void {
    this.#committed = new Map();
    this.#pending = [];
    this.#newestAtMs = 0;
  }

  /** @internal for WindowDraft */
  committedEntry(key: string): Entry | undefined {
    return this.#committed.get(key);
  }

  /** @internal for WindowDraft: committed windows, least recently touched first. */
  committedEntries(): IterableIterator<[string, Entry]> {
    return this.#committed.entries();
  }

  /** @internal for WindowDraft */
  get committedNewestAtMs(): number {
    return this.#newestAtMs;
  }
}

export class WindowDraft {
  readonly touched = new Map<string, Entry>();
  readonly evicted = new Set<string>();
  readonly #windows: DedupeWindows;
  /** Uncommitted drafts before this one, oldest first. */
  #before: readonly WindowDraft[];
  #newestAtMs: number;

  constructor(windows: DedupeWindows, before: readonly WindowDraft[]) {
    this.#windows = windows;
    this.#before = before;
    this.#newestAtMs = Math.max(windows.committedNewestAtMs, ...before.map((draft) => draft.newestAtMs));
  }

  get newestAtMs(): number {
    return this.#newestAtMs;
  }

  /** @internal for DedupeWindows: these drafts committed, their windows are now the committed ones. */
  forgetCommitted(committed: readonly WindowDraft[]): void {
    this.#before = this.#before.filter((draft) => !committed.includes(draft));
  }

  /**
   * Judges `sequence` of the outbox life `key`, stored by the stream at `atMs`, and notes it as
   * bridged unless it is a copy.
   */
  judge(key: string, sequence: number, atMs: number): SequenceVerdict {
    this.#newestAtMs = Math.max(this.#newestAtMs, atMs);
    let entry = this.touched.get(key);
    if (!entry) {
      const current = this.#current(key);
      entry = { window: current?.window.clone() ?? new SequenceWindow(), lastAtMs: current?.lastAtMs ?? atMs };
    }
    const verdict = entry.window.verdict(sequence);
    if (verdict !== "duplicate") entry.window.record(sequence);
    // A copy touches the window too: its machine is alive, and evicting now would let the next copy through.
    this.touched.set(key, { window: entry.window, lastAtMs: Math.max(entry.lastAtMs, atMs) });
    this.evicted.delete(key);
    return verdict;
  }

  /** Evicts windows idle for longer than the idle time, as of the newest event seen; returns how many. */
  evictIdle(): number {
    const horizon = this.#newestAtMs - this.#windows.idleMs;
    let evictions = 0;
    for (const [key, entry] of this.#windows.committedEntries()) {
      if (evictions >= MAX_EVICTIONS_PER_BATCH) break;
      if (this.touched.has(key) || this.#before.some((draft) => draft.touched.has(key) || draft.evicted.has(key)))
        continue;
      // Touch order is nearly time order: past the first window still in use, the rest are too.
      if (entry.lastAtMs >= horizon) break;
      this.evicted.add(key);
      evictions++;
    }
    return evictions;
  }

  changes(): WindowChange[] {
    const changes: WindowChange[] = [];
    for (const [key, entry] of this.touched)
      changes.push({ key, value: { ...entry.window.snapshot(), lastAtMs: entry.lastAtMs } });
    for (const key of this.evicted) changes.push({ key, value: null });
    return changes;
  }

  #current(key: string): Entry | undefined {
    for (let index = this.#before.length - 1; index >= 0; index--) {
      const draft = this.#before[index] as WindowDraft;
      if (draft.evicted.has(key)) return undefined;
      const entry = draft.touched.get(key);
      if (entry) return entry;
    }
    return this.#windows.committedEntry(key);
  }
}

/** `<machineId>/<outboxId>`: the outbox life a window belongs to (outbox id empty when the event named none). */
export function outboxLifeKey(machineId: string, outboxId: string | null): string {
  return `${machineId}/${outboxId ?? ""}`;
}

const WINDOW_KEY_PREFIX = "dedupe/";

/** The state record key of an outbox life's window: `dedupe/<machineId>/<outboxId>`. */
export function windowStateKey(lifeKey: string): string {
  return `${WINDOW_KEY_PREFIX}${lifeKey}`;
}

/** The outbox life of a state record key, or null for a key of another kind. */
export function lifeKeyOfState(stateKey: string): string | null {
  return stateKey.startsWith(WINDOW_KEY_PREFIX) ? stateKey.slice(WINDOW_KEY_PREFIX.length) : null;
}
