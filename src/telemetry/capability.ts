import type { CapabilityFactory } from "../capability/index.ts";
import { childInventoryCollector } from "./inventory-child.ts";
import { createTelemetry } from "./telemetry.ts";

/**
 * Telemetry and inventory on their schedules. `inventoryCommand`: the agent's own command line,
 * so inventories run in a child whose memory never stays in this process (default: in process).
 */
export function telemetryCapability(options: { inventoryCommand?: readonly string[] | undefined }): CapabilityFactory {
  return (context) => {
    const { settings } = context;
    const telemetry = createTelemetry({
      machineId: context.machineId,
      clock: context.clock,
      logger: context.logger,
      sink: context.sink,
      platform: context.platform,
      telemetrySchedule: settings.telemetrySchedule,
      inventorySchedule: settings.inventorySchedule,
      outboxGauge: () => context.readOutboxGauge(),
      tags: settings.tags,
      ...(options.inventoryCommand ? { collectInventory: childInventoryCollector(options.inventoryCommand) } : {}),
    });
    return {
      name: "telemetry",
      start: () => telemetry.start(),
      stop: () => telemetry.stop(),
      status: () => telemetry.stats(),
      appliers: [
        {
          name: "telemetry",
          apply: (next) =>
            telemetry.reconfigure({
              telemetrySchedule: next.telemetrySchedule,
              inventorySchedule: next.inventorySchedule,
              tags: next.tags,
            }),
        },
      ],
      rpcEndpoints: [{ name: "collect", handle: () => telemetry.collectNow() }],
    };
  };
}
