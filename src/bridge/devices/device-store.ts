import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../runtime/logger.ts";
import { DeviceState, newDeviceState } from "./device-state.ts";

export interface StoredDevice {
  readonly state: DeviceState;
  /** The KV revision the state was read at (0: the key does not exist). */
  readonly revision: number;
}

export class DeviceStoreConflictError extends Error {
  readonly code = "EDGE_BRIDGE_DEVICE_CONFLICT";
  readonly machineId: string;
  constructor(machineId: string) {
    super(`device ${machineId} was changed by someone else meanwhile`);
    this.name = "DeviceStoreConflictError";
    this.machineId = machineId;
  }
}

/**
 * Per-device state in a JetStream KV bucket, written by compare-and-set only: a write names the
 * revision it was computed from and fails if the key moved on (another writer, such as a previous
 * owner of the devices shard that has not noticed it lost it yet).
 */
export class DeviceStore {
  readonly #kv: KV;
  readonly #logger: Logger;

  private constructor(kv: KV, logger: Logger) {
    this.#kv = kv;
    this.#logger = logger;
  }

  static async open(connection: NatsConnection, bucket: string, logger: Logger): Promise<DeviceStore> {
    // create() opens the bucket when it exists with compatible settings.
    const kv = await new Kvm(connection).create(bucket, { history: 1 });
    return new DeviceStore(kv, logger);
  }

  async loadAll(): Promise<Map<string, StoredDevice>> {
    const keys: string[] = [];
    for await (const key of await this.#kv.keys()) keys.push(key);
    const devices = new Map<string, StoredDevice>();
    for (let start = 0; start < keys.length; start += 256) {
      const chunk = keys.slice(start, start + 256);
      const loaded = await Promise.all(chunk.map(async (key) => [key, await this.get(key)] as const));
      for (const [key, stored] of loaded) devices.set(key, stored);
    }
    return devices;
  }

  /** The stored state, or a fresh one at the key's revision (absent, deleted, or unreadable). */
  async get(machineId: string): Promise<StoredDevice> {
    const entry = await this.#kv.get(machineId);
    if (!entry) return { state: newDeviceState(machineId), revision: 0 };
    if (entry.operation !== "PUT") return { state: newDeviceState(machineId), revision: entry.revision };
    let parsed: ReturnType<typeof DeviceState.safeParse> | null = null;
    try {
      parsed = DeviceState.safeParse(entry.json());
    } catch {
      parsed = null;
    }
    if (!parsed?.success || parsed.data.machineId !== machineId) {
      // A value we cannot read is replaced by the next write (at its revision), never trusted.
      this.#logger.warn(
        { machineId, revision: entry.revision },
        "device state in the bucket is not readable; starting it afresh",
      );
      return { state: newDeviceState(machineId), revision: entry.revision };
    }
    return { state: parsed.data, revision: entry.revision };
  }

  /** Writes at `revision` (0: only if absent). Returns the new revision; throws DeviceStoreConflictError on a conflict. */
  async write(state: DeviceState, revision: number): Promise<number> {
    const payload = JSON.stringify(state);
    try {
      return revision === 0
        ? await this.#kv.create(state.machineId, payload)
        : await this.#kv.update(state.machineId, payload, revision);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (/wrong last sequence|key exists/i.test(message)) throw new DeviceStoreConflictError(state.machineId);
      throw error;
    }
  }
}
