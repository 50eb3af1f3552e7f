export * from "./messages.ts";
export * from "./subjects.ts";
export * from "./headers.ts";
export * from "./events.ts";
export * from "./streams.ts";
export * from "./telemetry.ts";
export * from "./event-bodies.ts";
export * from "./kafka-records.ts";
