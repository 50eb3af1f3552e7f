import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { EdgeError } from "../../errors/index.ts";
import type { Logger } from "../../runtime/index.ts";
import { DeviceState, newDeviceState } from "./device-state.ts";

export interface StoredDevice {
  readonly state: DeviceState;
  /** The KV revision the state was read at (0: the key does not exist). */
  readonly revision: number;
}

export class DeviceStoreConflictError extends EdgeError {
  readonly code = "EDGE_BRIDGE_DEVICE_CONFLICT";
  readonly machineId: string;
  constructor(machineId: string, cause: unknown) {
    super(`device ${machineId} was changed by someone else meanwhile`, { cause });
    this.name = "DeviceStoreConflictError";
    this.machineId = machineId;
  }
}

/** What the store needs of a KV bucket (so a test can hand it one that fails as it wants). */
export type DeviceBucket = Pick<KV, "get" | "create" | "update" | "watch" | "status">;

/** The server refused a compare-and-set: the key is not at the revision the write named. */
const CONFLICT_CODES: ReadonlySet<number> = new Set([
  JetStreamApiCodes.StreamWrongLastSequence,
  JetStreamApiCodes.StreamWrongLastSequenceUnknown,
]);

/**
 * Per-device state in a JetStream KV bucket, written by compare-and-set only: a write names the
 * revision it was computed from and fails if the key moved on (another writer, such as a previous
 * owner of the devices shard that has not noticed it lost it yet).
 */
export class DeviceStore {
  readonly #kv: DeviceBucket;
  readonly #logger: Logger;

  constructor(kv: DeviceBucket, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  static async open(connection: NatsConnection, bucket: string, logger: Logger): Promise<DeviceStore> {
    // create() opens the bucket when it exists with compatible settings.
    const kv = await new Kvm(connection).create(bucket, { history: 1 });
    return new DeviceStore(kv, logger);
  }

  /**
   * Every stored device, in one pass over the bucket's newest values (not one request per key),
   * handed to `onDevice` as read; stops early when `signal` aborts. Devices written meanwhile may
   * come too, newer or older than what the caller already holds: the caller keeps what it has.
   */
  async scan(onDevice: (device: StoredDevice) => void, signal: AbortSignal): Promise<number> {
    if ((await this.#kv.status()).values === 0 || signal.aborted) return 0;
    // Deletes come too: the last of the newest values may be one, and it is the one that says "done".
    const watcher = await this.#kv.watch();
    const stop = (): void => watcher.stop();
    signal.addEventListener("abort", stop, { once: true });
    let read = 0;
    try {
      for await (const entry of watcher) {
        const device = this.#deviceOf(entry);
        if (device) {
          read++;
          onDevice(device);
        }
        // The newest values come first; `delta` counts what is left of them.
        if (entry.delta === 0) break;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      watcher.stop();
    }
    return read;
  }

  /** The stored state, or a fresh one at the key's revision (absent, deleted, or unreadable). */
  async get(machineId: string): Promise<StoredDevice> {
    const entry = await this.#kv.get(machineId);
    if (!entry) return { state: newDeviceState(machineId), revision: 0 };
    return this.#deviceOf(entry) ?? { state: newDeviceState(machineId), revision: entry.revision };
  }

  /** Writes at `revision` (0: only if absent). Returns the new revision; throws DeviceStoreConflictError on a conflict. */
  async write(state: DeviceState, revision: number): Promise<number> {
    const payload = JSON.stringify(state);
    try {
      return revision === 0
        ? await this.#kv.create(state.machineId, payload)
        : await this.#kv.update(state.machineId, payload, revision);
    } catch (error) {
      if (error instanceof JetStreamApiError && CONFLICT_CODES.has(error.code))
        throw new DeviceStoreConflictError(state.machineId, error);
      throw error;
    }
  }

  /** A readable stored state, or null (deleted, or not a device state: replaced by the next write, never trusted). */
  #deviceOf(entry: KvEntry): StoredDevice | null {
    if (entry.operation !== "PUT") return null;
    let parsed: ReturnType<typeof DeviceState.safeParse> | null = null;
    try {
      parsed = DeviceState.safeParse(entry.json());
    } catch {
      parsed = null;
    }
    if (!parsed?.success || parsed.data.machineId !== entry.key) {
      this.#logger.warn(
        { machineId: entry.key, revision: entry.revision },
        "device state in the bucket is not readable; starting it afresh",
      );
      return null;
    }
    return { state: parsed.data, revision: entry.revision };
  }
}
