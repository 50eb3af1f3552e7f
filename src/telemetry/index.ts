export { telemetryCapability } from "./capability.ts";
export type { Collector, SamplePart } from "./collector.ts";
export { collectMachineInventory } from "./inventory.ts";
export { InvalidScheduleError, jitterOffsetMs, validateCronExpression } from "./jittered-schedule.ts";
export { createTelemetry, type Telemetry, type TelemetryOptions, type TelemetryStats } from "./telemetry.ts";
