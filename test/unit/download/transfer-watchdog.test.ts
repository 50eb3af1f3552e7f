import { describe, expect, it } from "vitest";
import { TransferWatchdog } from "../../../src/download/transfer-watchdog.ts";
import { manualClock } from "../../helpers/manual-clock.ts";

// Far longer than a test runs: only the manual clock can bring them.
const STALL_MS = 60_000;
const DEADLINE_MS = 600_000;

describe("transfer watchdog on the injected clock", () => {
  it("trips as stalled when the clock passes the stall time with no progress, each chunk starting it over", () => {
    const clock = manualClock();
    const watchdog = new TransferWatchdog({ clock, stallMs: STALL_MS, deadlineMs: DEADLINE_MS });
    clock.advance(STALL_MS - 1);
    watchdog.progress();
    clock.advance(STALL_MS - 1);
    expect(watchdog.trip).toBeNull();
    expect(watchdog.signal.aborted).toBe(false);
    clock.advance(1);
    expect(watchdog.trip).toBe("stalled");
    expect(watchdog.signal.aborted).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it("trips at the deadline however steady the progress", () => {
    const clock = manualClock();
    const watchdog = new TransferWatchdog({ clock, stallMs: STALL_MS, deadlineMs: DEADLINE_MS });
    for (let elapsedMs = 0; elapsedMs < DEADLINE_MS - 1_000; elapsedMs += 1_000) {
      clock.advance(1_000);
      watchdog.progress();
    }
    expect(watchdog.trip).toBeNull();
    clock.advance(1_000);
    expect(watchdog.trip).toBe("deadline");
    expect(clock.pending).toBe(0);
  });

  it("leaves nothing on the clock once disposed", () => {
    const clock = manualClock();
    const watchdog = new TransferWatchdog({ clock, stallMs: STALL_MS, deadlineMs: DEADLINE_MS });
    expect(clock.pending).toBe(2);
    watchdog.dispose();
    expect(clock.pending).toBe(0);
    clock.advance(DEADLINE_MS);
    expect(watchdog.trip).toBeNull();
  });
});
