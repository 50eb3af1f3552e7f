import { getHeapSpaceStatistics } from "node:v8";
import { describe, expect, it } from "vitest";
import { fullGarbageCollector } from "../../../src/runtime/full-gc.ts";

const newSpaceBytes = (): number =>
  getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? 0;

describe("fullGarbageCollector", () => {
  it("gives back the young generation a burst of allocation grew (a plain major collection keeps it)", () => {
    // A burst whose objects survive a while, as a backlog's batches do: V8 grows the young generation.
    let kept: Array<{ index: number; text: string }> = [];
    for (let index = 0; index < 3_000_000; index++) {
      kept.push({ index, text: `event-${index}` });
      if (kept.length > 100_000) kept = [];
    }
    kept = [];
    const grown = newSpaceBytes();
    expect(grown).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    fullGarbageCollector()();
    expect(newSpaceBytes()).toBeLessThanOrEqual(grown / 8);
    expect(kept).toEqual([]);
  });
});
