import { describe, expect, it } from "vitest";
import { watchForIdle } from "../../../src/runtime/idle-watch.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

describe("watchForIdle", () => {
  it("tells once per quiet spell after work, never during work or before any", () => {
    const clock = manualClock();
    let progress = 0;
    let idles = 0;
    const stop = watchForIdle({ clock, periodMs: 10_000, progress: () => progress, onIdle: () => idles++ });

    clock.advance(60_000);
    expect(idles).toBe(0); // never worked

    for (let period = 0; period < 5; period++) {
      progress += 100;
      clock.advance(10_000);
    }
    expect(idles).toBe(0); // working all along

    clock.advance(10_000);
    expect(idles).toBe(1); // a whole period without progress
    clock.advance(60_000);
    expect(idles).toBe(1); // the same quiet spell

    progress += 1;
    clock.advance(20_000);
    expect(idles).toBe(2); // worked again, then quiet again

    stop();
    progress += 1;
    clock.advance(60_000);
    expect(idles).toBe(2);
  });
});
