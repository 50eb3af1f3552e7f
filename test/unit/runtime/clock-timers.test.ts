import { describe, expect, it } from "vitest";
import { createHeartbeat } from "../../../src/lifecycle/heartbeat.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { startJitteredSchedule } from "../../../src/telemetry/jittered-schedule.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

describe("timers and schedules run on the injected clock", () => {
  it("beats the heartbeat as the clock moves, at a new interval at once, and never after it stops", () => {
    const clock = manualClock();
    let beats = 0;
    const heartbeat = createHeartbeat({
      intervalSeconds: 10,
      logger: silentLogger(),
      timers: clock.timers,
      beat: () => {
        beats += 1;
        return true;
      },
    });
    heartbeat.start();
    expect(beats).toBe(1);
    clock.advance(35_000);
    expect(beats).toBe(4);
    heartbeat.setIntervalSeconds(2);
    clock.advance(10_000);
    expect(beats).toBe(9);
    heartbeat.stop();
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(beats).toBe(9);
  });

  it("runs a cron schedule's work its jitter offset after each tick, and skips a tick while the last run goes on", async () => {
    const clock = manualClock();
    let finishRun: () => void = () => undefined;
    let runs = 0;
    const schedule = startJitteredSchedule({
      expression: "0 * * * * *",
      offsetMs: 5_000,
      timers: clock.timers,
      work: () => {
        runs += 1;
        return new Promise<void>((resolve) => (finishRun = resolve));
      },
    });
    clock.tickCron();
    clock.advance(4_999);
    expect(runs).toBe(0);
    clock.advance(1);
    expect(runs).toBe(1);
    // The run has not finished: the next tick is skipped and counted.
    clock.tickCron();
    expect(schedule.counters.skippedOverlaps).toBe(1);
    finishRun();
    await Promise.resolve();
    await Promise.resolve();
    clock.tickCron();
    clock.advance(5_000);
    expect(runs).toBe(2);
    schedule.stop();
    expect(clock.pending).toBe(0);
  });
});
