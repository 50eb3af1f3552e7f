import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { Inventory, TelemetrySample } from "../../../src/contracts/index.ts";
import type { EventSink } from "../../../src/events/event-sink.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { createTelemetry } from "../../../src/telemetry/index.ts";
import { collectInventory } from "../../../src/telemetry/inventory.ts";
import { childInventoryCollector } from "../../../src/telemetry/inventory-child.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const nullSink: EventSink = { emit: async () => ({ eventId: "x", sequence: 0 }) };

describe("telemetry on this machine", () => {
  it("takes samples that match the schema, with rates from two readings", async () => {
    const telemetry = createTelemetry({
      machineId: "real-1",
      clock: systemClock,
      logger: silentLogger(),
      sink: nullSink,
      telemetrySchedule: "0 0 0 1 1 *",
      inventorySchedule: "0 0 0 1 1 *",
      tags: { site: "ci" },
      platform: "linux",
    });
    const first = TelemetrySample.parse(await telemetry.collectNow());
    // The second reading once the machine's CPU counters have moved past the first's.
    const cpuLine = async (): Promise<string | undefined> => (await readFile("/proc/stat", "utf8")).split("\n")[0];
    const firstCounters = await cpuLine();
    await waitFor("the machine's CPU counters to move", async () => (await cpuLine()) !== firstCounters, 15_000, 10);
    const second = TelemetrySample.parse(await telemetry.collectNow());
    expect(first.cpu).toBeNull();
    expect(second.errors).toEqual([]);
    expect(second.intervalSeconds).toBeGreaterThan(0);
    expect(second.cpu?.totalPercent).toBeGreaterThanOrEqual(0);
    expect(second.cpu?.perCorePercent.length).toBeGreaterThan(0);
    expect(second.memory?.totalBytes).toBeGreaterThan(0);
    expect(second.filesystems.some((filesystem) => filesystem.mount === "/")).toBe(true);
    expect(second.processCount).toBeGreaterThan(0);
    expect(second.agent.rssBytes).toBeGreaterThan(0);
    expect(second.tagKeyValues).toEqual(["site:ci"]);
  });

  it("gathers an inventory that matches the schema and hashes the same twice", async () => {
    const first = Inventory.parse(
      await collectInventory({
        machineId: "real-1",
        clock: systemClock,
        tagKeyValues: ["site:ci"],
        platform: "linux" as const,
      }),
    );
    const second = Inventory.parse(
      await collectInventory({
        machineId: "real-1",
        clock: systemClock,
        tagKeyValues: ["site:ci"],
        platform: "linux" as const,
      }),
    );
    expect(first.osType).toBe("LINUX");
    expect(first.os?.kernel.length).toBeGreaterThan(0);
    expect(first.software.length).toBeGreaterThan(10);
    expect(first.tags).toEqual(["site"]);
    expect(second.hash).toBe(first.hash);
  }, 60_000);

  it("takes the same inventory in a child process (`edge-agent inventory --json`), as the daemon does", async () => {
    const request = { machineId: "real-1", clock: systemClock, tagKeyValues: ["site:ci"], platform: "linux" as const };
    const inChild = Inventory.parse(
      await childInventoryCollector([process.execPath, resolve(import.meta.dirname, "../../../src/cli/main.ts")])(
        request,
      ),
    );
    const inProcess = await collectInventory(request);
    expect(inChild.hash).toBe(inProcess.hash);
    expect(inChild.software.length).toBeGreaterThan(10);
  }, 60_000);

  it("kills a child that hangs, and refuses one that prints something else", async () => {
    const request = { machineId: "real-1", clock: systemClock, tagKeyValues: [], platform: "linux" as const };
    await expect(childInventoryCollector(["sh", "-c", "sleep 30", "sh"], 300)(request)).rejects.toThrow(
      /did not finish within 0.3 s/,
    );
    await expect(childInventoryCollector(["sh", "-c", 'echo \'{"osType":"LINUX"}\'', "sh"])(request)).rejects.toThrow(
      /not an inventory/,
    );
    await expect(childInventoryCollector(["sh", "-c", "echo boom >&2; exit 3", "sh"])(request)).rejects.toThrow(
      /inventory child .*: boom/,
    );
  });
});
