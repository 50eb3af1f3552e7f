import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type Outbox, openOutbox } from "../../../src/outbox/index.ts";
import type { Clock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { testEvent } from "../../fixtures/outbox/test-events.ts";
import { captureLog } from "../../helpers/log-capture.ts";
import { manualClock, settle } from "../../helpers/manual-clock.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("outbox storage", () => {
  const open: Outbox[] = [];
  const make = (
    dataDir: string,
    options: { maxBytes?: number; maxAgeMs?: number; clock?: Clock; logger?: ReturnType<typeof silentLogger> } = {},
  ): Outbox => {
    const outbox = openOutbox({ dataDir, clock: options.clock ?? manualClock(), logger: silentLogger(), ...options });
    open.push(outbox);
    return outbox;
  };
  afterEach(async () => {
    for (const outbox of open.splice(0)) await outbox.stop();
  });

  it("numbers events 1, 2, 3, ... and keeps counting across a restart", async () => {
    const dataDir = scratchDir("ea-outbox-");
    const first = make(dataDir);
    expect([first.append(testEvent(0)).sequence, first.append(testEvent(1)).sequence]).toEqual([1, 2]);
    await first.stop();
    const second = make(dataDir);
    expect(second.stats()).toMatchObject({ pendingCount: 2, lastSequence: 2 });
    expect(second.appendBatch([testEvent(2), testEvent(3)]).map((entry) => entry.sequence)).toEqual([3, 4]);
  });

  it("evicts telemetry first, oldest first, then state events, and counts every eviction", () => {
    const dataDir = scratchDir("ea-outbox-");
    const outbox = make(dataDir, { maxBytes: 20_000 });
    for (let index = 0; index < 10; index++) outbox.append(testEvent(index, { eventClass: "state", bodyBytes: 500 }));
    for (let index = 0; index < 60; index++)
      outbox.append(testEvent(index, { eventClass: "telemetry", bodyBytes: 500 }));
    const stats = outbox.stats();
    expect(stats.pendingBytes).toBeLessThanOrEqual(20_000);
    expect(stats.evictedState).toBe(0);
    expect(stats.evictedTelemetry).toBeGreaterThan(0);
    expect(stats.pendingCount + stats.evictedTelemetry).toBe(70);
    expect(stats.lastSequence).toBe(70);

    // Only state events left to evict once telemetry is gone.
    for (let index = 0; index < 40; index++) outbox.append(testEvent(index, { eventClass: "state", bodyBytes: 500 }));
    const later = outbox.stats();
    expect(later.evictedTelemetry).toBe(60);
    expect(later.evictedState).toBeGreaterThan(0);
    expect(later.pendingCount + later.evictedTelemetry + later.evictedState).toBe(110);
  });

  it("says evictions in a line per reason at most every 30 s, adding up what it held back, and the rest at stop", async () => {
    const clock = manualClock();
    const log = captureLog("warn");
    const outbox = make(scratchDir("ea-outbox-"), { maxBytes: 10_000, clock, logger: log.logger });
    const evictionLines = () =>
      log.matching("outbox evicted events").map(({ evicted, why, firstSequence, lastSequence }) => ({
        evicted,
        why,
        firstSequence,
        lastSequence,
      }));
    // A flood into a full outbox evicts at (almost) every append: 200 appends, not 180 lines.
    for (let index = 0; index < 200; index++)
      outbox.append(testEvent(index, { eventClass: "telemetry", bodyBytes: 500 }));
    const evictedInFlood = outbox.stats().evictedTelemetry;
    expect(evictedInFlood).toBeGreaterThan(150);
    expect(evictionLines()).toEqual([{ evicted: 1, why: "outbox full", firstSequence: 1, lastSequence: 1 }]);

    clock.advance(30_000);
    expect(evictionLines()).toHaveLength(2);
    expect(evictionLines()[1]).toEqual({
      evicted: evictedInFlood - 1,
      why: "outbox full",
      firstSequence: 2,
      lastSequence: evictedInFlood,
    });

    // An interval past the last line, the next eviction is said at once; one held back, at stop.
    clock.advance(30_000);
    outbox.append(testEvent(200, { eventClass: "telemetry", bodyBytes: 500 }));
    outbox.append(testEvent(201, { eventClass: "telemetry", bodyBytes: 500 }));
    expect(evictionLines()).toHaveLength(3);
    await outbox.stop();
    open.splice(open.indexOf(outbox), 1);
    expect(evictionLines().slice(2)).toEqual([
      { evicted: 1, why: "outbox full", firstSequence: evictedInFlood + 1, lastSequence: evictedInFlood + 1 },
      { evicted: 1, why: "outbox full", firstSequence: evictedInFlood + 2, lastSequence: evictedInFlood + 2 },
    ]);
  });

  it("evicts events older than the maximum age, and applies a smaller limit live", () => {
    const clock = manualClock();
    const outbox = make(scratchDir("ea-outbox-"), { maxAgeMs: 60_000, clock });
    outbox.append(testEvent(0));
    clock.advance(61_000);
    outbox.append(testEvent(1, { eventClass: "state" }));
    outbox.updateLimits({});
    expect(outbox.stats()).toMatchObject({ pendingCount: 1, evictedTelemetry: 1, oldestPendingAgeMs: 0 });
    outbox.updateLimits({ maxBytes: 1 });
    expect(outbox.stats()).toMatchObject({ pendingCount: 0, evictedState: 1 });
  });

  it("evicts a batch the drainer tried and must retry while offline: it is not held in flight until the link is back", async () => {
    const clock = manualClock();
    const dataDir = scratchDir("ea-outbox-");
    const outbox = make(dataDir, { maxAgeMs: 60_000, clock });
    for (let index = 0; index < 10; index++)
      outbox.append(testEvent(index, { eventClass: "telemetry", bodyBytes: 500 }));
    const tried: number[] = [];
    outbox.start({
      publish: async (_subject, _payload, headers) => {
        tried.push(Number(headers.find(([name]) => name === "X-Sequence")?.[1]));
        return { kind: "retry", reason: "offline" };
      },
    });
    await waitFor("the drainer to try the whole batch", () => tried.length >= 10);
    // The batch's outcomes are settled right after its last publish answers.
    await settle();
    outbox.updateLimits({ maxBytes: 2_000 });
    const limited = outbox.stats();
    expect(limited.pendingBytes).toBeLessThanOrEqual(2_000);
    expect(limited.evictedTelemetry).toBe(10 - limited.pendingCount);
    clock.advance(61_000);
    outbox.updateLimits({});
    expect(outbox.stats()).toMatchObject({ pendingCount: 0, evictedTelemetry: 10 });
    await outbox.stop();
    open.splice(open.indexOf(outbox), 1);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("sets a corrupt database aside, starts a new one, and never reuses a sequence number", async () => {
    const dataDir = scratchDir("ea-outbox-");
    const first = make(dataDir);
    first.append(testEvent(0));
    first.append(testEvent(1));
    await first.stop();
    for (const suffix of ["-wal", "-shm"]) rmSync(join(dataDir, `outbox.db${suffix}`), { force: true });
    writeFileSync(join(dataDir, "outbox.db"), "this is not a database ".repeat(200));

    const second = make(dataDir);
    expect(readdirSync(dataDir).some((name) => name.startsWith("outbox.db.corrupt-"))).toBe(true);
    const next = second.append(testEvent(2)).sequence;
    expect(next).toBeGreaterThan(2);
    expect(second.stats().pendingCount).toBe(1);
  });

  it("keeps events in memory while the database cannot be opened, without crashing, and stores them once it can", async () => {
    const dataDir = scratchDir("ea-outbox-");
    // A directory where the database file should be: opening fails as a broken disk would (and
    // this works as root too, where permissions would not stop us).
    const blocker = join(dataDir, "outbox.db");
    mkdirSync(blocker);
    const clock = manualClock();
    const outbox = openOutbox({ dataDir, clock, logger: silentLogger(), storageRetryMs: 50 });
    open.push(outbox);
    expect(() => outbox.appendBatch([testEvent(0), testEvent(1)])).not.toThrow();
    expect(outbox.stats()).toMatchObject({ pendingCount: 2, heldInMemory: 2, lastSequence: 2 });
    expect(outbox.stats().lastError).toMatch(/cannot open the database/);

    rmSync(blocker, { recursive: true });
    clock.advance(49);
    expect(outbox.stats().heldInMemory).toBe(2);
    // The next storage retry finds the disk back.
    clock.advance(1);
    expect(outbox.stats().heldInMemory).toBe(0);
    expect(outbox.stats()).toMatchObject({ pendingCount: 2, lastError: null });
    expect(outbox.append(testEvent(2)).sequence).toBe(3);
    expect(existsSync(blocker)).toBe(true);
  });
});
