export * from "./errors.ts";
export * from "./layers.ts";
export * from "./nats-endpoint.ts";
export * from "./nats-url.ts";
export * from "./setting-problem.ts";
