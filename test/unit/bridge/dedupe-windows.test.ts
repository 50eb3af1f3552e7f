import { describe, expect, it } from "vitest";
import {
  DedupeWindowRecord,
  DedupeWindows,
  outboxLifeKey,
  type WindowDraft,
} from "../../../src/bridge/dedupe/dedupe-windows.ts";
import { fullGarbageCollector } from "../../../src/runtime/full-gc.ts";

const DAY = 24 * 3_600_000;

describe("DedupeWindows", () => {
  it("keys windows by outbox life: a reinstalled machine's new outbox numbers from 1 without its old life's window", () => {
    const windows = new DedupeWindows();
    const first = windows.draft();
    for (let sequence = 1; sequence <= 1_500; sequence++) first.judge(outboxLifeKey("m-1", "life-1"), sequence, 1);
    windows.commit(first);
    const second = windows.draft();
    const verdicts = new Set<string>();
    for (let sequence = 1; sequence <= 1_500; sequence++)
      verdicts.add(second.judge(outboxLifeKey("m-1", "life-2"), sequence, 2));
    expect(verdicts).toEqual(new Set(["new"]));
    expect(second.judge(outboxLifeKey("m-1", "life-1"), 1_500, 3)).toBe("duplicate");
    // An event without X-Outbox-ID (an older agent) keeps the machine-wide window it always had.
    expect(outboxLifeKey("m-1", null)).toBe("m-1/");
  });

  it("a batch is judged on top of the batches prepared before it; discarding forgets them all, committing keeps them in order", () => {
    const windows = new DedupeWindows();
    const key = outboxLifeKey("m-1", "a");
    const first = windows.draft();
    expect(first.judge(key, 1, 1)).toBe("new");
    const second = windows.draft();
    expect(second.judge(key, 1, 1)).toBe("duplicate");
    expect(second.judge(key, 2, 1)).toBe("new");
    windows.discardUncommitted();
    const again = windows.draft();
    expect(again.judge(key, 1, 1)).toBe("new");
    windows.commit(again);
    expect(windows.draft().judge(key, 1, 1)).toBe("duplicate");
  });

  it("a committed draft is let go, even when each batch was prepared while the one before committed (a bridge under load)", async () => {
    const windows = new DedupeWindows();
    const key = outboxLifeKey("m-1", "a");
    let open = windows.draft();
    open.judge(key, 1, 1);
    // A WeakRef is kept alive until the end of the job that made it.
    const first = await Promise.resolve(new WeakRef(open));
    for (let sequence = 2; sequence <= 50; sequence++) {
      const next: WindowDraft = windows.draft();
      expect(next.judge(key, sequence, 1)).toBe("new");
      windows.commit(open);
      open = next;
    }
    expect(open.judge(key, 1, 1)).toBe("duplicate");
    await new Promise((resolve) => setImmediate(resolve));
    fullGarbageCollector()();
    expect(first.deref()).toBeUndefined();
  });

  it("evicts windows idle for longer than the idle time of stream time, with tombstones; a copy arriving after that is bridged again (the stated fallback)", () => {
    const windows = new DedupeWindows({ idleMs: 8 * DAY });
    const quiet = outboxLifeKey("quiet", "a");
    const busy = outboxLifeKey("busy", "b");
    const start = windows.draft();
    start.judge(quiet, 5, 0);
    start.judge(busy, 1, 0);
    windows.commit(start);
    const later = windows.draft();
    later.judge(busy, 2, 9 * DAY);
    expect(later.evictIdle()).toBe(1);
    expect(later.changes()).toEqual([
      { key: busy, value: { high: 2, runs: [[1, 2]], lastAtMs: 9 * DAY } },
      { key: quiet, value: null },
    ]);
    windows.commit(later);
    expect(windows.size).toBe(1);
    expect(windows.draft().judge(quiet, 5, 9 * DAY)).toBe("new");
  });

  it("a window touched by a batch not yet committed is not evicted under it", () => {
    const windows = new DedupeWindows({ idleMs: DAY });
    const key = outboxLifeKey("m-1", "a");
    const start = windows.draft();
    start.judge(key, 1, 0);
    windows.commit(start);
    const touching = windows.draft();
    touching.judge(key, 2, 2 * DAY);
    const next = windows.draft();
    next.judge(outboxLifeKey("m-2", "b"), 1, 2 * DAY);
    expect(next.evictIdle()).toBe(0);
  });

  it("loads what a takeover read back, least recently written first, and validates its records", () => {
    const windows = new DedupeWindows({ idleMs: DAY });
    windows.load([
      ["old/a", { high: 3, runs: [[1, 3]], lastAtMs: 0 }],
      ["new/b", { high: 9, runs: [[9, 9]], lastAtMs: 3 * DAY }],
    ]);
    const draft = windows.draft();
    expect(draft.judge("old/a", 2, 3 * DAY)).toBe("duplicate");
    expect(draft.judge("new/b", 8, 3 * DAY)).toBe("new");
    expect(DedupeWindowRecord.safeParse({ high: 3, runs: [[2, 1]], lastAtMs: 0 }).success).toBe(false);
    expect(
      DedupeWindowRecord.safeParse({
        high: 3,
        runs: [
          [1, 2],
          [3, 3],
        ],
        lastAtMs: 0,
      }).success,
    ).toBe(false);
    expect(DedupeWindowRecord.safeParse({ high: 3, runs: [[1, 4]], lastAtMs: 0 }).success).toBe(false);
    expect(
      DedupeWindowRecord.safeParse({
        high: 4,
        runs: [
          [1, 2],
          [4, 4],
        ],
        lastAtMs: 0,
      }).success,
    ).toBe(true);
  });
});
