export * from "./exit-codes.ts";
export * from "./exit-when-written.ts";
export * from "./graceful-stop.ts";
export * from "./one-shot-connection.ts";
export * from "./process-alive.ts";
export * from "./process-host.ts";
