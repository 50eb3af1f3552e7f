import { describe, expect, it } from "vitest";
import {
  SEQUENCE_WINDOW_WIDTH,
  SequenceWindow,
  windowFromLegacyRing,
} from "../../../src/bridge/dedupe/sequence-window.ts";

describe("SequenceWindow", () => {
  it("tells a copy from a first delivery, also out of order and after a snapshot", () => {
    const window = new SequenceWindow();
    for (const sequence of [1, 2, 3, 5, 8]) window.record(sequence);
    expect([1, 2, 3, 5, 8].map((sequence) => window.verdict(sequence))).toEqual([
      "duplicate",
      "duplicate",
      "duplicate",
      "duplicate",
      "duplicate",
    ]);
    // 4, 6 and 7 never came: a late first delivery is new, not a copy.
    expect([4, 6, 7, 9].map((sequence) => window.verdict(sequence))).toEqual(["new", "new", "new", "new"]);
    window.record(6);
    const restored = new SequenceWindow(window.snapshot());
    expect(restored.verdict(6)).toBe("duplicate");
    expect(restored.verdict(7)).toBe("new");
    expect(restored.high).toBe(8);
  });

  it("forgets what slides out of the window and calls it too old to judge", () => {
    const window = new SequenceWindow();
    window.record(10);
    window.record(10 + SEQUENCE_WINDOW_WIDTH - 1);
    expect(window.verdict(10)).toBe("duplicate");
    window.record(10 + SEQUENCE_WINDOW_WIDTH);
    expect(window.verdict(10)).toBe("too-old");
    // The ring position of 10 now belongs to 10 + WIDTH, which was recorded: no false copy below.
    expect(window.verdict(11)).toBe("new");
    window.record(50_000);
    expect(window.verdict(10 + SEQUENCE_WINDOW_WIDTH)).toBe("too-old");
    expect(window.verdict(49_999)).toBe("new");
    expect(window.verdict(50_000)).toBe("duplicate");
  });

  it("a clone is independent: a batch that is not committed leaves the window as it was", () => {
    const window = new SequenceWindow();
    window.record(1);
    const batch = window.clone();
    batch.record(2);
    expect(window.verdict(2)).toBe("new");
    expect(batch.verdict(2)).toBe("duplicate");
  });

  it("keeps what it saw as runs: one for an outbox delivering in order, a few bytes however wide the window", () => {
    const window = new SequenceWindow();
    for (let sequence = 1; sequence <= 5_000; sequence++) window.record(sequence);
    expect(window.snapshot()).toEqual({ high: 5_000, runs: [[5_000 - SEQUENCE_WINDOW_WIDTH + 1, 5_000]] });
    const gappy = new SequenceWindow();
    for (const sequence of [3, 1, 7, 2, 5, 6]) gappy.record(sequence);
    expect(gappy.snapshot()).toEqual({
      high: 7,
      runs: [
        [1, 3],
        [5, 7],
      ],
    });
    gappy.record(4);
    expect(gappy.snapshot()).toEqual({ high: 7, runs: [[1, 7]] });
  });

  it("reads the bit ring of the layout before runs", () => {
    const bits = Buffer.alloc(SEQUENCE_WINDOW_WIDTH / 8);
    for (const sequence of [2_000, 2_001, 2_003]) {
      const bit = sequence % SEQUENCE_WINDOW_WIDTH;
      bits.writeUInt8(bits.readUInt8(bit >> 3) | (1 << (bit & 7)), bit >> 3);
    }
    const window = windowFromLegacyRing({ high: 2_003, seen: bits.toString("base64") });
    expect(window.snapshot()).toEqual({
      high: 2_003,
      runs: [
        [2_000, 2_001],
        [2_003, 2_003],
      ],
    });
    expect(windowFromLegacyRing({ high: 5, seen: "bad" }).high).toBe(0);
  });
});
