import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createHeartbeat } from "../../../src/lifecycle/heartbeat.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";

describe("heartbeat", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("beats at once, then every interval, and a new interval takes effect immediately", () => {
    const beat = vi.fn(() => true);
    const heartbeat = createHeartbeat({ intervalSeconds: 60, beat, logger: silentLogger() });
    heartbeat.start();
    expect(beat).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(120_000);
    expect(beat).toHaveBeenCalledTimes(3);
    heartbeat.setIntervalSeconds(2);
    vi.advanceTimersByTime(10_000);
    expect(beat).toHaveBeenCalledTimes(8);
    heartbeat.stop();
    vi.advanceTimersByTime(60_000);
    expect(beat).toHaveBeenCalledTimes(8);
  });

  it("refuses a nonsense interval and keeps the old one", () => {
    const heartbeat = createHeartbeat({ intervalSeconds: 60, beat: () => true, logger: silentLogger() });
    expect(() => heartbeat.setIntervalSeconds(0)).toThrow(RangeError);
    expect(heartbeat.intervalSeconds).toBe(60);
  });

  it("keeps ticking when a beat throws", () => {
    const beat = vi.fn((): boolean => {
      throw new Error("boom");
    });
    const heartbeat = createHeartbeat({ intervalSeconds: 1, beat, logger: silentLogger() });
    heartbeat.start();
    vi.advanceTimersByTime(3_000);
    heartbeat.stop();
    expect(beat).toHaveBeenCalledTimes(4);
  });
});
