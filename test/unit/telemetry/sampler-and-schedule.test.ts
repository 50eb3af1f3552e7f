import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Inventory, TelemetrySample } from "../../../src/contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import {
  type Collector,
  createTelemetry,
  InvalidScheduleError,
  jitterOffsetMs,
  validateCronExpression,
} from "../../../src/telemetry/index.ts";
import { startJitteredSchedule } from "../../../src/telemetry/jittered-schedule.ts";
import { createSampler } from "../../../src/telemetry/sampler.ts";
import { type ManualClock, manualClock, settle } from "../../helpers/manual-clock.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const recordingSink = (): EventSink & { events: OutgoingEvent[] } => {
  const events: OutgoingEvent[] = [];
  return {
    events,
    emit: async (event) => {
      events.push(event);
      return { eventId: String(events.length), sequence: events.length };
    },
  };
};

describe("sampler", () => {
  it("reports a hanging collector once the injected clock passes its deadline, a throwing one in errors, and still fills in the others", async () => {
    const hanging: Collector = { name: "hangs", collect: () => new Promise(() => undefined) };
    const throwing: Collector = {
      name: "throws",
      collect: async () => {
        throw new Error("boom");
      },
    };
    const fine: Collector = { name: "load", collect: async () => ({ load: { one: 1, five: 2, fifteen: 3 } }) };
    const clock = manualClock();
    // The deadline is the injected clock's: far longer than the test runs, reached only by moving it.
    const sampler = createSampler({
      machineId: "m1",
      clock,
      collectors: [hanging, throwing, fine],
      timeoutMs: 600_000,
      tagKeyValues: () => ["site:lab"],
    });
    let sampled: TelemetrySample | null = null;
    void sampler.sample().then((sample) => (sampled = sample));
    await settle();
    clock.advance(599_999);
    await settle();
    expect(sampled).toBeNull();
    clock.advance(1);
    await settle();
    const sample = sampled as TelemetrySample | null;
    if (sample === null) throw new Error("the sample did not finish at the collectors' deadline");
    expect(clock.pending).toBe(0);
    expect(sample.load).toEqual({ one: 1, five: 2, fifteen: 3 });
    expect(sample.errors).toEqual([
      { collector: "hangs", message: "hangs did not finish within 600000 ms" },
      { collector: "throws", message: "boom" },
    ]);
    expect(sample.tagKeyValues).toEqual(["site:lab"]);
    expect(sample.intervalSeconds).toBeNull();
  });
});

describe("jitter and schedule", () => {
  it("gives each machine a fixed offset inside the window, spread across a fleet", () => {
    const offsets = Array.from({ length: 1_000 }, (_, index) => jitterOffsetMs(`machine-${index}`, 30_000));
    expect(offsets.every((offset) => offset >= 0 && offset < 30_000)).toBe(true);
    expect(jitterOffsetMs("machine-1", 30_000)).toBe(offsets[1]);
    // Roughly uniform: every 3-second slice of the window gets some machines.
    const slices = new Set(offsets.map((offset) => Math.floor(offset / 3_000)));
    expect(slices.size).toBe(10);
    expect(jitterOffsetMs("m", 0)).toBe(0);
  });

  it("never jitters more than half the interval", () => {
    const everySecond = startJitteredSchedule({
      expression: "* * * * * *",
      jitter: { key: "machine-7", maxMs: 30_000 },
      work: async () => undefined,
    });
    const everyMinute = startJitteredSchedule({
      expression: "0 * * * * *",
      jitter: { key: "machine-7", maxMs: 30_000 },
      work: async () => undefined,
    });
    everySecond.stop();
    everyMinute.stop();
    expect(everySecond.offsetMs).toBeLessThan(500);
    expect(everyMinute.offsetMs).toBe(jitterOffsetMs("machine-7", 30_000));
  });

  it("refuses a bad cron expression with a named error", () => {
    expect(() => validateCronExpression("every minute")).toThrow(InvalidScheduleError);
    expect(() => validateCronExpression("*/5 * * * * *")).not.toThrow();
  });
});

/** One tick of every cron schedule on `clock`, and the work due right after it (no jitter) started. */
async function scheduledTick(clock: ManualClock): Promise<void> {
  clock.tickCron();
  clock.advance(0);
  await settle();
}

describe("inventory", () => {
  it("sends the inventory at start, not again while unchanged, and again when it changes", async () => {
    let hash = "a".repeat(64);
    let checks = 0;
    const clock = manualClock();
    const sink = recordingSink();
    const telemetry = createTelemetry({
      machineId: "m1",
      clock,
      logger: silentLogger(),
      sink,
      telemetrySchedule: "0 0 0 1 1 *",
      inventorySchedule: "* * * * * *",
      jitterMs: 0,
      collectors: [],
      platform: "linux",
      collectInventory: async () => {
        checks += 1;
        return { hash } as unknown as Inventory;
      },
    });
    const inventories = (): OutgoingEvent[] => sink.events.filter((event) => event.type === "inventory");
    await telemetry.start();
    await waitFor("the inventory at start", () => inventories().length === 1);
    // Two scheduled checks find it unchanged: each ran (counted), neither sent it again.
    await scheduledTick(clock);
    await scheduledTick(clock);
    await waitFor("two scheduled checks", () => checks === 3);
    await settle();
    expect(inventories()).toHaveLength(1);
    hash = "b".repeat(64);
    await scheduledTick(clock);
    await waitFor("the changed inventory", () => inventories().length === 2);
    telemetry.stop();
    expect(telemetry.stats().inventoriesSent).toBe(2);
    expect(clock.pending).toBe(0);
  });

  it("sends the inventory at once when the tags change, so new tags reach the platform without waiting for the schedule", async () => {
    const sink = recordingSink();
    const telemetry = createTelemetry({
      machineId: "m1",
      clock: manualClock(),
      logger: silentLogger(),
      sink,
      telemetrySchedule: "0 0 0 1 1 *",
      inventorySchedule: "0 0 0 1 1 *",
      jitterMs: 0,
      collectors: [],
      platform: "linux",
      // The hash covers the tags, as the real inventory's does.
      collectInventory: async ({ tagKeyValues }) =>
        ({
          hash: createHash("sha256").update(tagKeyValues.join(",")).digest("hex"),
          tagKeyValues,
        }) as unknown as Inventory,
    });
    await telemetry.start();
    const inventories = (): Inventory[] =>
      sink.events.filter((event) => event.type === "inventory").map((event) => event.body as Inventory);
    await waitFor("the inventory at start", () => inventories().length === 1);
    telemetry.reconfigure({ tags: {} });
    telemetry.reconfigure({ tags: { site: "lab" } });
    await waitFor("the inventory with the new tags", () => inventories().length === 2);
    expect(inventories()[1]?.tagKeyValues).toEqual(["site:lab"]);
    telemetry.stop();
  });

  it("takes a new schedule live and refuses a bad one without changing anything", async () => {
    const telemetry = createTelemetry({
      machineId: "m1",
      clock: manualClock(),
      logger: silentLogger(),
      sink: recordingSink(),
      telemetrySchedule: "0 * * * * *",
      inventorySchedule: "0 0 * * * *",
      collectors: [],
      platform: "linux",
      collectInventory: async () => ({ hash: "c".repeat(64) }) as unknown as Inventory,
    });
    await telemetry.start();
    expect(() => telemetry.reconfigure({ telemetrySchedule: "nonsense" })).toThrow(InvalidScheduleError);
    expect(() => telemetry.reconfigure({ telemetrySchedule: "*/5 * * * * *", tags: { site: "lab" } })).not.toThrow();
    telemetry.stop();
  });
});
