import type { MachineSubjects } from "./subjects.ts";

/**
 * How an event is treated when the outbox is full: telemetry goes first, state events last
 * (DESIGN.md, "Delivery guarantee").
 */
export type EventClass = "telemetry" | "state";

/** Event types: the `X-Event-Type` header, and the key into the subject table. */
export const EventType = {
  installedAgent: "installed-agent",
  clientConnection: "client-connection",
  hostname: "hostname",
  telemetry: "telemetry",
  inventory: "inventory",
  toolInstallationStatus: "tool-installation.status",
  toolConnection: "tool-connection",
  configStatus: "config.status",
  outboxGauge: "outbox",
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

const TELEMETRY_TYPES: ReadonlySet<string> = new Set([EventType.telemetry, EventType.inventory, EventType.outboxGauge]);

export function eventClassOf(type: string): EventClass {
  return TELEMETRY_TYPES.has(type) ? "telemetry" : "state";
}

export function subjectFor(subjects: MachineSubjects, type: EventType): string {
  switch (type) {
    case EventType.installedAgent:
      return subjects.installedAgent;
    case EventType.clientConnection:
      return subjects.clientConnection;
    case EventType.hostname:
      return subjects.hostname;
    case EventType.telemetry:
      return subjects.telemetry;
    case EventType.inventory:
      return subjects.inventory;
    case EventType.toolInstallationStatus:
      return subjects.toolInstallationStatus;
    case EventType.toolConnection:
      return subjects.toolConnection;
    case EventType.configStatus:
      return subjects.configStatus;
    case EventType.outboxGauge:
      return subjects.outboxGauge;
  }
}
