import type { NatsConnection } from "@nats-io/transport-node";
import {
  BridgeHeader,
  ClientConnectionEvent,
  EventHeader,
  Inventory,
  MACHINE_PINOT_MESSAGE_TYPE_ID,
  type MachinePinotMessage,
  parseMachineEventSubject,
} from "../../contracts/index.ts";
import type { Clock, Logger } from "../../runtime/index.ts";
import { headerValue, type OutputRecord, provenanceOf, type SourceMessage, textOf } from "../records/index.ts";
import type { BatchPositions, PreparedBatch, ShardProcessor, TakeoverContext } from "../shards/index.ts";
import type { ClientIdentityRule } from "./client-identity.ts";
import { type DeviceSignal, type DeviceStatus, nextDeviceState, type RowContext } from "./device-state.ts";
import { type DeviceStore, DeviceStoreConflictError, type StoredDevice } from "./device-store.ts";
import { machineOfPresenceSubject, PresenceMonitor, PresenceSignal, type PresenceStreamNames } from "./presence.ts";

export const DEVICES_SHARD = "devices";

export interface DevicesProcessorOptions {
  readonly store: () => Promise<DeviceStore>;
  readonly devicesTopic: string;
  readonly rowContext: RowContext;
  readonly connectionsStream: string;
  readonly inventoryStream: string;
  readonly presence: PresenceStreamNames;
  readonly systemConnection: () => NatsConnection | null;
  readonly defaultHeartbeatSeconds: number;
  readonly missedHeartbeats: number;
  /** Who a $SYS advisory is about (presence.ts). */
  readonly identity: ClientIdentityRule;
  readonly clock: Clock;
  readonly logger: Logger;
}

const MAX_CONFLICT_RETRIES = 5;
/** Full device states kept between batches (the rest are read from the bucket when a signal comes). */
const DEVICE_CACHE_LIMIT = 10_000;

/** What presence needs of every known device: held for the whole fleet, a few dozen bytes each. */
interface PresenceView {
  readonly status: StoredDevice["state"]["status"];
  readonly heartbeatSeconds: number | null;
}

/**
 * The devices shard: turns connection events, inventories and presence signals into OpenFrame's
 * `MachinePinotMessage` rows on devices-topic, one full row whenever one of its nine fields
 * changes.
 *
 * Exactly once, with state outside Kafka: for each machine a batch changes, the new state (row
 * included) is written to the KV bucket by compare-and-set before the Kafka transaction commits,
 * marked `pending` with the positions the transaction covers. If that transaction never commits,
 * its events are read again, find the state already applied (each field has its own order, see
 * device-state.ts), and see a pending row the checkpoint does not cover: that row is written again,
 * as it was (same ingestionTime). If it did commit, the checkpoint covers it and nothing is
 * written twice. A row's ingestionTime is above the machine's previous one, so Pinot's FULL
 * upsert (comparison column ingestionTime) always keeps the newest state.
 *
 * Time: every signal's time comes from the NATS server's clock (when its stream stored it, or the
 * server's own event time, whichever is earlier), a device's own clock only ever lowering it; the
 * bridge host's clock never enters a row. Provenance: an event on a machine's subject counts only
 * when it is that machine's (records/provenance.ts); anything else is ignored and logged.
 *
 * Loaded lazily, so a takeover does not grow with the fleet: a device's full state is read from
 * the bucket when a signal for it comes (the newest DEVICE_CACHE_LIMIT stay in memory), and what
 * presence needs of every device (status, heartbeat interval) is read in one pass over the bucket
 * after the takeover, in the background. Presence is judged from the end of that pass, with the
 * full grace period it always gives after a takeover.
 */
export class DevicesProcessor implements ShardProcessor {
  readonly name = DEVICES_SHARD;
  /** Its state is written to the KV bucket while preparing, so it prepares only on committed ground. */
  readonly preparesAhead = false;
  readonly streams: readonly string[];
  readonly #options: DevicesProcessorOptions;
  readonly #logger: Logger;
  #store: DeviceStore | null = null;
  /** Least recently used first. */
  #devices = new Map<string, StoredDevice>();
  #presence = new Map<string, PresenceView>();
  #monitor: PresenceMonitor | null = null;
  #warmUp: AbortController | null = null;
  #warmUpDone = false;
  #ignored = 0;
  #unattributed = 0;
  #rowsWritten = 0;

  constructor(options: DevicesProcessorOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.streams = [options.connectionsStream, options.inventoryStream, options.presence.stream];
  }

  async takeover(context: TakeoverContext): Promise<void> {
    this.#stopPresence();
    const store = await this.#options.store();
    this.#store = store;
    this.#devices = new Map();
    this.#presence = new Map();
    this.#warmUpDone = false;
    const warmUp = new AbortController();
    this.#warmUp = warmUp;
    const monitor = new PresenceMonitor({
      connection: context.connection,
      systemConnection: this.#options.systemConnection(),
      names: this.#options.presence,
      deviceOf: (machineId) => this.#presence.get(machineId),
      defaultHeartbeatSeconds: this.#options.defaultHeartbeatSeconds,
      missedHeartbeats: this.#options.missedHeartbeats,
      identity: this.#options.identity,
      clock: this.#options.clock,
      logger: this.#logger,
    });
    this.#monitor = monitor;
    const began = this.#options.clock.monotonicMs();
    void store
      .scan((device) => {
        // What a batch wrote meanwhile is newer than what the pass read.
        if (!this.#presence.has(device.state.machineId)) this.#presence.set(device.state.machineId, viewOf(device));
      }, warmUp.signal)
      .then(() => {
        if (warmUp.signal.aborted) return;
        this.#warmUpDone = true;
        const online = [...this.#presence]
          .filter(([, device]) => device.status === "ONLINE")
          .map(([machineId, device]) => ({ machineId, heartbeatSeconds: device.heartbeatSeconds }));
        monitor.start(online);
        this.#logger.info(
          {
            devices: this.#presence.size,
            online: online.length,
            readMs: Math.round(this.#options.clock.monotonicMs() - began),
          },
          "devices read; presence is watched from here",
        );
      })
      .catch((error: unknown) => {
        if (warmUp.signal.aborted) return;
        // Presence waits for the next takeover; device events go on being bridged meanwhile.
        this.#logger.error(
          { err: error },
          "cannot read the devices bucket: presence is not judged until the shard is taken over again",
        );
      });
  }

  async prepare(messages: readonly SourceMessage[], positions: BatchPositions): Promise<PreparedBatch> {
    const store = this.#store;
    if (!store) throw new Error("devices shard not taken over");
    const signals = new Map<string, DeviceSignal[]>();
    for (const message of messages) {
      const read = this.#signalsOf(message);
      if (!read) {
        this.#ignored++;
        continue;
      }
      const list = signals.get(read.machineId) ?? [];
      list.push(...read.signals);
      signals.set(read.machineId, list);
    }
    const rows = new Map<string, MachinePinotMessage>();
    await Promise.all(
      [...signals].map(async ([machineId, machineSignals]) => {
        for (let attempt = 0; ; attempt++) {
          const stored = this.#devices.get(machineId) ?? (await store.get(machineId));
          const outcome = nextDeviceState(stored.state, machineSignals, positions, this.#options.rowContext);
          if (outcome.row) rows.set(machineId, outcome.row);
          if (outcome.state === stored.state) {
            this.#remember(stored);
            return;
          }
          try {
            const revision = await store.write(outcome.state, stored.revision);
            this.#remember({ state: outcome.state, revision });
            if (outcome.state.status === "ONLINE") this.#monitor?.watch(machineId, outcome.state.heartbeatSeconds);
            return;
          } catch (error) {
            if (!(error instanceof DeviceStoreConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
            this.#logger.warn(
              { machineId },
              "device state changed under us (a previous owner still writing?): reading it again",
            );
            rows.delete(machineId);
            this.#remember(await store.get(machineId));
          }
        }
      }),
    );
    const records = [...rows.values()].map((row) => this.#record(row));
    return {
      records,
      stateChanges: [],
      counts: { produced: records.length, deadLetters: 0, duplicatesDropped: 0, unverifiableSequences: 0 },
      committed: () => {
        this.#rowsWritten += records.length;
      },
    };
  }

  async release(): Promise<void> {
    this.#stopPresence();
    this.#devices = new Map();
    this.#presence = new Map();
  }

  stats(): Record<string, number> {
    let online = 0;
    for (const device of this.#presence.values()) if (device.status === "ONLINE") online++;
    return {
      devicesKnown: this.#presence.size,
      devicesOnline: online,
      devicesInMemory: this.#devices.size,
      devicesRead: this.#warmUpDone ? 1 : 0,
      rowsWritten: this.#rowsWritten,
      signalsIgnored: this.#ignored,
      signalsUnattributed: this.#unattributed,
      presenceSignalsPublished: this.#monitor?.signalsPublished ?? 0,
    };
  }

  /** A device's state as now stored: the newest used, what presence sees of it updated. */
  #remember(device: StoredDevice): void {
    const { machineId } = device.state;
    this.#devices.delete(machineId);
    this.#devices.set(machineId, device);
    if (this.#devices.size > DEVICE_CACHE_LIMIT) {
      const oldest = this.#devices.keys().next();
      if (!oldest.done) this.#devices.delete(oldest.value);
    }
    if (device.revision > 0) this.#presence.set(machineId, viewOf(device));
  }

  #stopPresence(): void {
    this.#warmUp?.abort();
    this.#warmUp = null;
    this.#monitor?.stop();
    this.#monitor = null;
  }

  #signalsOf(message: SourceMessage): { machineId: string; signals: DeviceSignal[] } | null {
    let body: unknown;
    try {
      body = JSON.parse(textOf(message.data));
    } catch {
      return null;
    }
    if (message.stream === this.#options.presence.stream) {
      const machineId = machineOfPresenceSubject(this.#options.presence, message.subject);
      const parsed = PresenceSignal.safeParse(body);
      if (!machineId || !parsed.success) return null;
      const { status, reason, serverAtMs, heartbeatSeconds } = parsed.data;
      // The server's clock orders it: its own time of the event if it gave one, else when the
      // presence stream stored the signal. Never the bridge host's clock (atMs), which may step.
      const atMs =
        serverAtMs === null || serverAtMs === undefined ? message.storedAtMs : Math.min(serverAtMs, message.storedAtMs);
      return { machineId, signals: [{ kind: "status", status, atMs, reason, heartbeatSeconds }] };
    }
    const route = parseMachineEventSubject(message.subject);
    if (!route) return null;
    const provenance = provenanceOf(message, route.machineId);
    if (provenance.kind !== "machine") {
      this.#unattributed++;
      this.#logger.warn(
        {
          subject: message.subject,
          stream: message.stream,
          streamSequence: message.streamSequence,
          reason: provenance.reason,
        },
        "ignored a message that is not the event of the machine its subject names",
      );
      return null;
    }
    if (route.eventType === "client-connection") {
      const parsed = ClientConnectionEvent.safeParse(body);
      if (!parsed.success) return null;
      const status: DeviceStatus = parsed.data.type === "DISCONNECT" ? "OFFLINE" : "ONLINE";
      // The device's clock, but never later than the stream stored it: a clock running ahead
      // must not make a status outlive the server's own later word.
      const atMs = Math.min(Date.parse(parsed.data.timestamp), message.storedAtMs);
      return { machineId: route.machineId, signals: [{ kind: "status", status, atMs, reason: "connection-event" }] };
    }
    if (route.eventType === "inventory") {
      const parsed = Inventory.safeParse(body);
      if (!parsed.success) return null;
      const sequenceText = headerValue(message, EventHeader.sequence);
      const sequence = sequenceText !== undefined && /^\d+$/.test(sequenceText) ? Number(sequenceText) : null;
      const { osType, deviceType, tags, tagKeyValues } = parsed.data;
      return {
        machineId: route.machineId,
        signals: [
          {
            kind: "inventory",
            osType,
            deviceType,
            tags,
            tagKeyValues,
            sequence,
            atMs: Math.min(Date.parse(parsed.data.timestamp), message.storedAtMs),
          },
          // The machine published it over its own connection, so it was ONLINE when the stream
          // stored it: a machine whose inventory comes before any status has a row with one.
          { kind: "status", status: "ONLINE", atMs: message.storedAtMs, reason: "inventory" },
        ],
      };
    }
    return null;
  }

  #record(row: MachinePinotMessage): OutputRecord {
    const ordered: MachinePinotMessage = {
      tenantId: row.tenantId ?? null,
      machineId: row.machineId,
      organizationId: row.organizationId ?? null,
      deviceType: row.deviceType ?? null,
      status: row.status ?? null,
      osType: row.osType ?? null,
      tags: row.tags,
      tagKeyValues: row.tagKeyValues,
      ingestionTime: row.ingestionTime,
    };
    return {
      topic: this.#options.devicesTopic,
      key: Buffer.from(row.machineId),
      value: Buffer.from(JSON.stringify(ordered)),
      headers: new Map([[Buffer.from(BridgeHeader.typeId), Buffer.from(MACHINE_PINOT_MESSAGE_TYPE_ID)]]),
    };
  }
}

function viewOf(device: StoredDevice): PresenceView {
  return { status: device.state.status, heartbeatSeconds: device.state.heartbeatSeconds };
}
