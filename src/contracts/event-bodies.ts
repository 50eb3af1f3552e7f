import type { z } from "zod";
import { EventType } from "./events.ts";
import {
  ClientConnectionEvent,
  ClientUninstallStatus,
  ClientUpdateStatus,
  ConfigStatus,
  HostnameMessage,
  InstalledAgentMessage,
  ToolConnectionMessage,
  ToolInstallationStatus,
} from "./messages.ts";
import { TaskOutputChunk, TaskResult } from "./tasks.ts";
import { Inventory, OutboxGauge, TelemetrySample } from "./telemetry.ts";

/** The schema of each event type's body: what a reader of `machine.{id}.<type>` validates against. */
export const EVENT_BODY_SCHEMAS = {
  [EventType.installedAgent]: InstalledAgentMessage,
  [EventType.clientConnection]: ClientConnectionEvent,
  [EventType.hostname]: HostnameMessage,
  [EventType.telemetry]: TelemetrySample,
  [EventType.inventory]: Inventory,
  [EventType.toolInstallationStatus]: ToolInstallationStatus,
  [EventType.toolConnection]: ToolConnectionMessage,
  [EventType.configStatus]: ConfigStatus,
  [EventType.clientUpdateStatus]: ClientUpdateStatus,
  [EventType.clientUninstallStatus]: ClientUninstallStatus,
  [EventType.taskOutput]: TaskOutputChunk,
  [EventType.taskResult]: TaskResult,
  [EventType.outboxGauge]: OutboxGauge,
} as const satisfies Readonly<Record<EventType, z.ZodType>>;

/** The body of an event of type `T`, as its schema says: what `EventSink.emit` accepts for it. */
export type EventBody<T extends EventType> = z.infer<(typeof EVENT_BODY_SCHEMAS)[T]>;

const EVENT_TYPES: ReadonlySet<string> = new Set(Object.values(EventType));

export function isEventType(value: string): value is EventType {
  return EVENT_TYPES.has(value);
}

/** `machine.{id}.{type}`: the machine and event type a subject names, or null for any other subject. */
export function parseMachineEventSubject(subject: string): { machineId: string; eventType: EventType } | null {
  const match = /^machine\.([A-Za-z0-9_-]+)\.(.+)$/.exec(subject);
  if (!match) return null;
  const [, machineId, rest] = match as unknown as [string, string, string];
  if (machineId === "all" || !isEventType(rest)) return null;
  return { machineId, eventType: rest };
}

/** The machine a `machine.{id}.…` subject belongs to (never `all`), whatever follows; else null. */
export function machineIdOfSubject(subject: string): string | null {
  const machineId = /^machine\.([A-Za-z0-9_-]+)\./.exec(subject)?.[1];
  return machineId === undefined || machineId === "all" ? null : machineId;
}
