import type { MachineSubjects } from "./subjects.ts";

/**
 * How an event is treated when the outbox is full: telemetry goes first, state events last
 * (docs/DESIGN.md, "Delivery guarantee").
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
  clientUpdateStatus: "client-update.status",
  clientUninstallStatus: "client-uninstall.status",
  taskOutput: "task.output",
  taskResult: "task.result",
  outboxGauge: "outbox",
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** A task's output chunks go before state when the outbox is full: its result keeps the last lines and says what was lost. */
const TELEMETRY_TYPES: ReadonlySet<string> = new Set([
  EventType.telemetry,
  EventType.inventory,
  EventType.outboxGauge,
  EventType.taskOutput,
]);

export function eventClassOf(type: string): EventClass {
  return TELEMETRY_TYPES.has(type) ? "telemetry" : "state";
}

const SUBJECT_OF_TYPE: Readonly<Record<EventType, keyof MachineSubjects>> = {
  [EventType.installedAgent]: "installedAgent",
  [EventType.clientConnection]: "clientConnection",
  [EventType.hostname]: "hostname",
  [EventType.telemetry]: "telemetry",
  [EventType.inventory]: "inventory",
  [EventType.toolInstallationStatus]: "toolInstallationStatus",
  [EventType.toolConnection]: "toolConnection",
  [EventType.configStatus]: "configStatus",
  [EventType.clientUpdateStatus]: "clientUpdateStatus",
  [EventType.clientUninstallStatus]: "clientUninstallStatus",
  [EventType.taskOutput]: "taskOutput",
  [EventType.taskResult]: "taskResult",
  [EventType.outboxGauge]: "outboxGauge",
};

export function subjectFor(subjects: MachineSubjects, type: EventType): string {
  return subjects[SUBJECT_OF_TYPE[type]];
}
