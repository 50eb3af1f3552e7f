import { describe, expect, it, vi } from "vitest";
import { createHeartbeat } from "../../../src/lifecycle/heartbeat.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

describe("heartbeat", () => {
  it("beats at once, then every interval, and a new interval takes effect immediately", () => {
    const clock = manualClock();
    const beat = vi.fn(() => true);
    const heartbeat = createHeartbeat({ intervalSeconds: 60, beat, logger: silentLogger(), timers: clock.timers });
    heartbeat.start();
    expect(beat).toHaveBeenCalledTimes(1);
    clock.advance(120_000);
    expect(beat).toHaveBeenCalledTimes(3);
    heartbeat.setIntervalSeconds(2);
    clock.advance(10_000);
    expect(beat).toHaveBeenCalledTimes(8);
    heartbeat.stop();
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(beat).toHaveBeenCalledTimes(8);
  });

  it("refuses a nonsense interval and keeps the old one", () => {
    const clock = manualClock();
    const heartbeat = createHeartbeat({
      intervalSeconds: 60,
      beat: () => true,
      logger: silentLogger(),
      timers: clock.timers,
    });
    expect(() => heartbeat.setIntervalSeconds(0)).toThrow(RangeError);
    expect(heartbeat.intervalSeconds).toBe(60);
  });

  it("keeps ticking when a beat throws", () => {
    const clock = manualClock();
    const beat = vi.fn((): boolean => {
      throw new Error("boom");
    });
    const heartbeat = createHeartbeat({ intervalSeconds: 1, beat, logger: silentLogger(), timers: clock.timers });
    heartbeat.start();
    clock.advance(3_000);
    heartbeat.stop();
    expect(beat).toHaveBeenCalledTimes(4);
  });
});
