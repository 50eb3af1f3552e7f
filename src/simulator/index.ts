export * from "./fleet.ts";
export * from "./simulated-identity.ts";
