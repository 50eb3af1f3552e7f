export * from "./fleet.ts";
export type { FleetSummary } from "./fleet-summary.ts";
export * from "./simulated-identity.ts";
