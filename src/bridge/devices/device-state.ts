import * as z from "zod";
import { MachinePinotMessage, tagValueIn } from "../../contracts/index.ts";

/**
 * What the bridge knows of one machine, kept in the JetStream KV bucket `<group>-devices` (key =
 * machine id) and changed only by compare-and-set, so instances keep no state of their own.
 *
 * Every field has its own ordering, so applying a signal twice, or two signals in either order,
 * ends in the same state:
 * - status: the newest by time (`statusAtMs`, the NATS server's clock, see devices-processor.ts):
 *   a device's DISCONNECT that arrives late, after its heartbeats came back, is older than them and
 *   changes nothing;
 * - inventory fields: the newest by the device's own sequence (X-Sequence), else by time.
 *
 * `lastRow` is the last devices-topic row written for the machine, and `pending` says which
 * positions the transaction that wrote it covered: until the shard's checkpoint reaches them, the
 * row may have been lost with an aborted transaction and is written again.
 */
export const DeviceStatus = z.enum(["ONLINE", "OFFLINE"]);
export type DeviceStatus = z.infer<typeof DeviceStatus>;

export const StatusReason = z.enum([
  "connection-event",
  "heartbeat",
  "missed-heartbeats",
  "server-connect",
  "server-disconnect",
  /** An inventory the machine published: it was connected when the stream stored it. */
  "inventory",
]);
export type StatusReason = z.infer<typeof StatusReason>;

export const DeviceState = z.object({
  version: z.literal(1),
  machineId: z.string().min(1),
  status: DeviceStatus.nullable(),
  statusAtMs: z.number().nullable(),
  statusReason: StatusReason.nullable(),
  /** The interval this machine says it beats at; null when unknown (the setting is assumed). */
  heartbeatSeconds: z.number().int().positive().nullable(),
  osType: z.string().nullable(),
  deviceType: z.string().nullable(),
  tags: z.array(z.string()),
  tagKeyValues: z.array(z.string()),
  inventorySequence: z.number().int().nullable(),
  inventoryAtMs: z.number().nullable(),
  lastRow: MachinePinotMessage.nullable(),
  pending: z.object({ positions: z.record(z.string(), z.number().int()) }).nullable(),
});
export type DeviceState = z.infer<typeof DeviceState>;

export function newDeviceState(machineId: string): DeviceState {
  return {
    version: 1,
    machineId,
    status: null,
    statusAtMs: null,
    statusReason: null,
    heartbeatSeconds: null,
    osType: null,
    deviceType: null,
    tags: [],
    tagKeyValues: [],
    inventorySequence: null,
    inventoryAtMs: null,
    lastRow: null,
    pending: null,
  };
}

/** Something that says what a machine is or whether it is there. */
export type DeviceSignal =
  | {
      readonly kind: "status";
      readonly status: DeviceStatus;
      readonly atMs: number;
      readonly reason: StatusReason;
      readonly heartbeatSeconds?: number | null;
    }
  | {
      readonly kind: "inventory";
      readonly osType: string;
      readonly deviceType: string;
      readonly tags: readonly string[];
      readonly tagKeyValues: readonly string[];
      readonly sequence: number | null;
      readonly atMs: number;
    };

/** Applies one signal; returns the same object when it changes nothing. */
export function applySignal(state: DeviceState, signal: DeviceSignal): DeviceState {
  if (signal.kind === "status") {
    if (state.statusAtMs !== null && signal.atMs < state.statusAtMs) return state;
    const heartbeatSeconds = signal.heartbeatSeconds ?? state.heartbeatSeconds;
    if (
      state.status === signal.status &&
      state.statusAtMs === signal.atMs &&
      state.statusReason === signal.reason &&
      state.heartbeatSeconds === heartbeatSeconds
    )
      return state;
    return { ...state, status: signal.status, statusAtMs: signal.atMs, statusReason: signal.reason, heartbeatSeconds };
  }
  const newer =
    signal.sequence !== null && state.inventorySequence !== null
      ? signal.sequence > state.inventorySequence
      : state.inventoryAtMs === null || signal.atMs > state.inventoryAtMs;
  if (!newer) return state;
  return {
    ...state,
    osType: signal.osType,
    deviceType: signal.deviceType,
    tags: [...signal.tags],
    tagKeyValues: [...signal.tagKeyValues],
    inventorySequence: signal.sequence ?? state.inventorySequence,
    inventoryAtMs: signal.atMs,
  };
}

export interface RowContext {
  readonly tenantId: string | null;
  readonly organizationId: string | null;
  readonly organizationTag: string;
}

/** The machine's devices-topic row, but for `ingestionTime`: OpenFrame's nine fields, by their names. */
export function rowFields(state: DeviceState, context: RowContext): Omit<MachinePinotMessage, "ingestionTime"> {
  const organizationFromTag = tagValueIn(state.tagKeyValues, context.organizationTag);
  return {
    tenantId: context.tenantId,
    machineId: state.machineId,
    organizationId: organizationFromTag ?? context.organizationId,
    deviceType: state.deviceType,
    status: state.status,
    osType: state.osType,
    tags: [...state.tags],
    tagKeyValues: [...state.tagKeyValues],
  };
}

export function sameRow(
  a: Omit<MachinePinotMessage, "ingestionTime">,
  b: Omit<MachinePinotMessage, "ingestionTime"> | null,
): boolean {
  if (b === null) return false;
  return (
    a.tenantId === b.tenantId &&
    a.machineId === b.machineId &&
    a.organizationId === b.organizationId &&
    a.deviceType === b.deviceType &&
    a.status === b.status &&
    a.osType === b.osType &&
    a.tags.join("\u0000") === b.tags.join("\u0000") &&
    a.tagKeyValues.join("\u0000") === b.tagKeyValues.join("\u0000")
  );
}

/** Whether the transaction at `positions` is known committed: the checkpoint reached every one. */
export function coveredBy(
  positions: Readonly<Record<string, number>>,
  committed: Readonly<Record<string, number>>,
): boolean {
  return Object.entries(positions).every(([stream, sequence]) => (committed[stream] ?? -1) >= sequence);
}

/** Where a batch stands: what the shard's checkpoint covers before it, and what it covers after it. */
export interface BatchPositionsView {
  readonly committed: Readonly<Record<string, number>>;
  readonly afterBatch: Readonly<Record<string, number>>;
}

/**
 * A machine's state after a batch's signals, and the devices row to write for it, if any: a new
 * row when a field changed (its ingestionTime above the last one, and at least the newest
 * signal's time); the last row again, unchanged, when the transaction that wrote it is not
 * covered by the checkpoint (it may have been aborted); else none.
 */
export function nextDeviceState(
  before: DeviceState,
  signals: readonly DeviceSignal[],
  positions: BatchPositionsView,
  context: RowContext,
): { state: DeviceState; row: MachinePinotMessage | null } {
  let state = before;
  let latestAtMs = 0;
  for (const signal of signals) {
    state = applySignal(state, signal);
    latestAtMs = Math.max(latestAtMs, signal.atMs);
  }
  const fields = rowFields(state, context);
  if (!sameRow(fields, before.lastRow)) {
    const row: MachinePinotMessage = {
      ...fields,
      ingestionTime: Math.max((before.lastRow?.ingestionTime ?? 0) + 1, latestAtMs),
    };
    return { state: { ...state, lastRow: row, pending: { positions: { ...positions.afterBatch } } }, row };
  }
  if (before.pending !== null && before.lastRow !== null && !coveredBy(before.pending.positions, positions.committed)) {
    return { state: { ...state, pending: { positions: { ...positions.afterBatch } } }, row: before.lastRow };
  }
  return { state, row: null };
}
