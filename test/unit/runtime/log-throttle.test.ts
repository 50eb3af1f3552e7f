import { describe, expect, it } from "vitest";
import { createLogThrottle } from "../../../src/runtime/log-throttle.ts";

describe("createLogThrottle", () => {
  it("lets the first line through, then one per interval with how many were held back", () => {
    let now = 1_000;
    const throttle = createLogThrottle({ intervalMs: 30_000, nowMs: () => now });
    expect(throttle.take()).toEqual({ log: true, suppressed: 0 });
    now += 5_000;
    expect(throttle.take()).toEqual({ log: false, suppressed: 1 });
    now += 20_000;
    expect(throttle.take()).toEqual({ log: false, suppressed: 2 });
    now += 5_000;
    expect(throttle.take()).toEqual({ log: true, suppressed: 2 });
    now += 29_999;
    expect(throttle.take().log).toBe(false);
    now += 1;
    expect(throttle.take()).toEqual({ log: true, suppressed: 1 });
  });

  it("logs at once again after a reset (the problem changed)", () => {
    let now = 0;
    const throttle = createLogThrottle({ intervalMs: 30_000, nowMs: () => now });
    throttle.take();
    now += 1_000;
    expect(throttle.take().log).toBe(false);
    throttle.reset();
    expect(throttle.take()).toEqual({ log: true, suppressed: 0 });
  });
});
