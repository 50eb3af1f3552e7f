export { createTelemetry, type Telemetry, type TelemetryOptions, type TelemetryStats } from "./telemetry.ts";
export { validateCronExpression, InvalidScheduleError, jitterOffsetMs } from "./jittered-schedule.ts";
export type { Collector, SamplePart } from "./collector.ts";
