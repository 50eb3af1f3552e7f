import { randomUUID } from "node:crypto";
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import * as z from "zod";
import { HeartbeatMessage, isSafeToken, STREAM_DUPLICATE_WINDOW_MS } from "../../contracts/index.ts";
import type { Logger } from "../../runtime/index.ts";
import { type Cancel, type Clock, timersOf } from "../../runtime/index.ts";
import { type ClientIdentityRule, machineOfClientEvent, parseServerClientEvent } from "./client-identity.ts";
import { DeviceStatus, StatusReason } from "./device-state.ts";

/**
 * Presence signals: what the bridge itself observes of a machine (its heartbeats, or their
 * absence, and the server's own $SYS CONNECT/DISCONNECT). They are published into a stream of the
 * bridge's own and read back by the devices shard like any device event, so a status change the
 * bridge noticed is committed to Kafka exactly once, with a position, even across a crash.
 *
 * Time: a signal is ordered against a machine's other signals by the NATS server's clock, never
 * the bridge host's: by the time the server gives its own event, else by when the presence stream
 * stored the signal (devices-processor.ts). A step of the bridge host's clock moves nothing.
 */
export const PresenceSignal = z.object({
  status: DeviceStatus,
  /** When the bridge noticed, by its host's clock: for people reading the stream, never for ordering. */
  atMs: z.number().int(),
  /** The server's own time of the event (a $SYS advisory's timestamp), when there is one. */
  serverAtMs: z.number().int().nullish(),
  reason: StatusReason,
  heartbeatSeconds: z.number().int().positive().nullish(),
});
export type PresenceSignal = z.infer<typeof PresenceSignal>;

export interface PresenceStreamNames {
  readonly stream: string;
  readonly subjectPrefix: string;
}

export function presenceStreamNames(group: string): PresenceStreamNames {
  return { stream: `${group.toUpperCase().replace(/-/g, "_")}_PRESENCE`, subjectPrefix: `${group}.presence` };
}

export function machineOfPresenceSubject(names: PresenceStreamNames, subject: string): string | null {
  if (!subject.startsWith(`${names.subjectPrefix}.`)) return null;
  const machineId = subject.slice(names.subjectPrefix.length + 1);
  return isSafeToken(machineId) ? machineId : null;
}

export async function ensurePresenceStream(connection: NatsConnection, names: PresenceStreamNames): Promise<void> {
  const manager = await jetstreamManager(connection);
  try {
    await manager.streams.info(names.stream);
  } catch (error) {
    if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
    await manager.streams.add({
      name: names.stream,
      subjects: [`${names.subjectPrefix}.*`],
      storage: "file",
      // Only needed until the devices shard has bridged it.
      max_age: 24 * 3600 * 1_000_000_000,
      duplicate_window: STREAM_DUPLICATE_WINDOW_MS * 1_000_000,
    });
  }
}

const HEARTBEAT_SUBJECT = /^machine\.([A-Za-z0-9_-]+)\.heartbeat$/;

interface Seen {
  /** Monotonic time of the last sign of life. */
  atMs: number;
  intervalMs: number;
}

export interface PresenceMonitorOptions {
  readonly connection: NatsConnection;
  /** A connection in the system account, for $SYS CONNECT/DISCONNECT; optional. */
  readonly systemConnection: NatsConnection | null;
  readonly names: PresenceStreamNames;
  /** What the devices shard holds of a machine (undefined: a machine it does not know). */
  readonly deviceOf: (
    machineId: string,
  ) => { readonly status: DeviceStatus | null; readonly heartbeatSeconds: number | null } | undefined;
  readonly defaultHeartbeatSeconds: number;
  readonly missedHeartbeats: number;
  /** Who a $SYS advisory is about: the authenticated identity, or (by an explicit setting) the connection name. */
  readonly identity: ClientIdentityRule;
  /** Silence is measured on its monotonic time; its expiry checks run on its timers. */
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Watches heartbeats (core NATS, `machine.*.heartbeat`) and, when given a system-account
 * connection, the server's own client events, and publishes a presence signal when what it sees
 * differs from the status the devices shard holds: ONLINE on a heartbeat from a machine not
 * ONLINE, OFFLINE after `missedHeartbeats` intervals without one. Runs only where the devices
 * shard runs, so one instance judges presence at a time. After a takeover every machine the shard
 * holds ONLINE gets a full grace period from that moment: a new owner never marks a machine
 * OFFLINE for heartbeats it was not there to see.
 *
 * Who: a heartbeat is about the machine its subject names (only that machine's identity may
 * publish it); a $SYS advisory is about the machine its authenticated identity is named after
 * (client-identity.ts), never the connection name a client chose, unless the rule says so.
 */
export class PresenceMonitor {
  readonly #options: PresenceMonitorOptions;
  readonly #seen = new Map<string, Seen>();
  /** The last status signalled per machine and when (monotonic), so one change is one signal. */
  readonly #signalled = new Map<string, { status: DeviceStatus; atMs: number }>();
  readonly #subscriptions: Subscription[] = [];
  #cancelExpiry: Cancel | null = null;
  #signalsPublished = 0;
  #lastFailure: string | null = null;

  constructor(options: PresenceMonitorOptions) {
    this.#options = options;
  }

  get signalsPublished(): number {
    return this.#signalsPublished;
  }

  get machinesWatched(): number {
    return this.#seen.size;
  }

  start(online: ReadonlyArray<{ machineId: string; heartbeatSeconds: number | null }>): void {
    const now = this.#options.clock.monotonicMs();
    for (const machine of online)
      this.#seen.set(machine.machineId, { atMs: now, intervalMs: this.#intervalMs(machine.heartbeatSeconds) });
    const { connection, systemConnection } = this.#options;
    this.#subscriptions.push(
      connection.subscribe("machine.*.heartbeat", {
        callback: (error, message) => void (error === null && this.#heartbeat(message.subject, message.data)),
      }),
    );
    if (systemConnection) {
      for (const kind of ["CONNECT", "DISCONNECT"] as const) {
        this.#subscriptions.push(
          systemConnection.subscribe(`$SYS.ACCOUNT.*.${kind}`, {
            callback: (error, message) => void (error === null && this.#serverEvent(kind, message.data)),
          }),
        );
      }
    }
    this.#cancelExpiry = timersOf(this.#options.clock).every(1_000, () => this.#expire());
  }

  /**
   * A machine the shard now holds ONLINE (by any signal): watched from now on, even if its
   * heartbeats never reached this judge (it went away before the first), so it still times out.
   */
  watch(machineId: string, heartbeatSeconds: number | null): void {
    if (this.#seen.has(machineId)) return;
    this.#seen.set(machineId, {
      atMs: this.#options.clock.monotonicMs(),
      intervalMs: this.#intervalMs(heartbeatSeconds),
    });
  }

  stop(): void {
    for (const subscription of this.#subscriptions.splice(0)) subscription.unsubscribe();
    this.#cancelExpiry?.();
    this.#cancelExpiry = null;
    this.#seen.clear();
    this.#signalled.clear();
  }

  #intervalMs(heartbeatSeconds: number | null | undefined): number {
    return (heartbeatSeconds ?? this.#options.defaultHeartbeatSeconds) * 1_000;
  }

  #heartbeat(subject: string, data: Uint8Array): void {
    const machineId = HEARTBEAT_SUBJECT.exec(subject)?.[1];
    if (!machineId || machineId === "all") return;
    let heartbeatSeconds: number | null = null;
    try {
      const parsed = HeartbeatMessage.safeParse(
        data.length === 0 ? {} : JSON.parse(Buffer.from(data).toString("utf8")),
      );
      heartbeatSeconds = parsed.success ? (parsed.data.intervalSeconds ?? null) : null;
    } catch {
      heartbeatSeconds = null;
    }
    const now = this.#options.clock.monotonicMs();
    const intervalMs = this.#intervalMs(heartbeatSeconds);
    if (this.#seen.get(machineId)?.intervalMs !== intervalMs)
      this.#options.logger.debug({ machineId, heartbeatSeconds }, "heartbeats from a machine, at this interval");
    this.#seen.set(machineId, { atMs: now, intervalMs });
    // Also when the shard does not know the machine's own interval yet (ONLINE from a CONNECT
    // event): after a takeover the next judge needs it.
    const intervalUnknown =
      heartbeatSeconds !== null &&
      this.#options.deviceOf(machineId)?.heartbeatSeconds !== heartbeatSeconds &&
      this.#signalled.get(machineId) === undefined;
    if (this.#believed(machineId) !== "ONLINE" || intervalUnknown || this.#stale(machineId, "ONLINE", now)) {
      this.#signal(machineId, { status: "ONLINE", reason: "heartbeat", heartbeatSeconds });
    }
  }

  #serverEvent(kind: "CONNECT" | "DISCONNECT", data: Uint8Array): void {
    const event = parseServerClientEvent(data);
    if (!event) return;
    const machineId = machineOfClientEvent(event, this.#options.identity);
    // Only machines the shard knows: other clients (operators, the bridge itself) are not devices.
    if (machineId === null || this.#options.deviceOf(machineId) === undefined) return;
    const serverTime = event.timestamp === undefined ? Number.NaN : Date.parse(event.timestamp);
    const serverAtMs = Number.isNaN(serverTime) ? null : serverTime;
    if (kind === "CONNECT") {
      this.#seen.set(machineId, {
        atMs: this.#options.clock.monotonicMs(),
        intervalMs: this.#seen.get(machineId)?.intervalMs ?? this.#intervalMs(null),
      });
      this.#signal(machineId, { status: "ONLINE", serverAtMs, reason: "server-connect" });
    } else {
      this.#seen.delete(machineId);
      this.#signal(machineId, { status: "OFFLINE", serverAtMs, reason: "server-disconnect" });
    }
  }

  #expire(): void {
    const now = this.#options.clock.monotonicMs();
    for (const [machineId, seen] of this.#seen) {
      if (now - seen.atMs <= this.#options.missedHeartbeats * seen.intervalMs) continue;
      this.#seen.delete(machineId);
      if (this.#believed(machineId) === "ONLINE")
        this.#signal(machineId, { status: "OFFLINE", reason: "missed-heartbeats" });
    }
  }

  /** What the shard holds, or what we signalled since if the shard has not taken it in yet. */
  #believed(machineId: string): DeviceStatus | null | undefined {
    const signalled = this.#signalled.get(machineId);
    const held = this.#options.deviceOf(machineId)?.status;
    if (signalled && held === signalled.status) {
      // Taken in: from now on the shard's own state speaks (other sources may change it).
      this.#signalled.delete(machineId);
      return held;
    }
    return signalled?.status ?? held;
  }

  /** A signal the shard has still not taken in after a few seconds is sent again. */
  #stale(machineId: string, status: DeviceStatus, now: number): boolean {
    const last = this.#signalled.get(machineId);
    return (
      last !== undefined &&
      last.status === status &&
      this.#options.deviceOf(machineId)?.status !== status &&
      now - last.atMs > 10_000
    );
  }

  #signal(machineId: string, observed: Omit<PresenceSignal, "atMs">): void {
    const signal: PresenceSignal = { ...observed, atMs: this.#options.clock.now() };
    this.#signalled.set(machineId, { status: signal.status, atMs: this.#options.clock.monotonicMs() });
    this.#options.logger.debug({ machineId, status: signal.status, reason: signal.reason }, "presence signal");
    const subject = `${this.#options.names.subjectPrefix}.${machineId}`;
    jetstream(this.#options.connection)
      // One id per signal: a publish the client retries is stored once.
      .publish(subject, JSON.stringify(signal), { msgID: `${machineId}-${signal.status}-${randomUUID()}` })
      .then(() => {
        this.#signalsPublished++;
        if (this.#lastFailure !== null) this.#options.logger.info("presence signals are published again");
        this.#lastFailure = null;
      })
      .catch((error: unknown) => {
        // Forget it, so the next heartbeat or expiry check signals again.
        if (this.#signalled.get(machineId)?.status === signal.status) this.#signalled.delete(machineId);
        const reason = error instanceof Error ? error.message : String(error);
        if (reason !== this.#lastFailure)
          this.#options.logger.warn(
            { reason, machineId },
            "cannot publish a presence signal; it is sent again on the next heartbeat or check",
          );
        this.#lastFailure = reason;
      });
  }
}
