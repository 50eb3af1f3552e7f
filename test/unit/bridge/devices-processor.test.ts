import { JetStreamApiError } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeviceState, newDeviceState } from "../../../src/bridge/devices/device-state.ts";
import { type DeviceBucket, DeviceStore, DeviceStoreConflictError } from "../../../src/bridge/devices/device-store.ts";
import { DevicesProcessor } from "../../../src/bridge/devices/devices-processor.ts";
import { presenceStreamNames } from "../../../src/bridge/devices/presence.ts";
import type { SourceMessage } from "../../../src/bridge/records/source-message.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { inventoryOf } from "../../fixtures/bridge/simulated-fleet.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const DEVICES = 2_000;

describe("the devices shard's state (a real nats-server)", () => {
  let nats: NatsServerHandle;
  let connection: NatsConnection;

  beforeAll(async () => {
    nats = await startNatsServer();
    connection = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await connection?.close();
    await nats?.dispose();
  });

  const stored = (machineId: string, online: boolean): DeviceState => ({
    ...newDeviceState(machineId),
    status: online ? "ONLINE" : "OFFLINE",
    // Later than the inventory below: the row keeps the status the bucket held.
    statusAtMs: Date.now() + 3_600_000,
    statusReason: "heartbeat",
    heartbeatSeconds: online ? 30 : null,
    osType: "LINUX",
    tags: ["site"],
    tagKeyValues: ["site:old"],
  });

  it("takes over without reading the fleet: a device is read when a signal for it comes, and one pass over the bucket gives presence every device", async () => {
    const bucket = "lazy-devices";
    const kv = await new Kvm(connection).create(bucket, { history: 1 });
    const writes: Array<Promise<number>> = [];
    for (let index = 0; index < DEVICES; index++)
      writes.push(kv.put(`m-${index}`, JSON.stringify(stored(`m-${index}`, index % 4 === 0))));
    await Promise.all(writes);
    const processor = new DevicesProcessor({
      store: () => DeviceStore.open(connection, bucket, silentLogger()),
      devicesTopic: "devices-topic",
      rowContext: { tenantId: "t", organizationId: null, organizationTag: "organization" },
      connectionsStream: "CLIENT_CONNECTIONS",
      inventoryStream: "INVENTORY",
      presence: presenceStreamNames("lazy"),
      systemConnection: () => null,
      defaultHeartbeatSeconds: 60,
      missedHeartbeats: 3,
      identity: { trustConnectionNames: false },
      clock: systemClock,
      logger: silentLogger(),
    });
    await processor.takeover({ checkpoint: null, states: new Map(), connection });
    expect(processor.stats()).toMatchObject({ devicesInMemory: 0 });

    const inventory: SourceMessage = {
      stream: "INVENTORY",
      streamSequence: 1,
      subject: "machine.m-7.inventory",
      data: new TextEncoder().encode(JSON.stringify(inventoryOf("m-7", { site: "new" }))),
      headers: [
        ["X-Machine-ID", "m-7"],
        ["X-Sequence", "5"],
      ],
      storedAtMs: Date.now(),
    };
    const batch = await processor.prepare([inventory], {
      committed: { INVENTORY: 0 },
      afterBatch: { INVENTORY: 1 },
    });
    batch.committed();
    // The row is built on what the bucket held of m-7 (its status), read when the signal came.
    expect(batch.records).toHaveLength(1);
    expect(JSON.parse(String(batch.records[0]?.value))).toMatchObject({
      machineId: "m-7",
      status: "OFFLINE",
      tagKeyValues: ["site:new"],
    });
    expect(processor.stats()).toMatchObject({ devicesInMemory: 1 });

    await waitFor("the pass over the bucket", () => processor.stats().devicesRead === 1, 30_000);
    expect(processor.stats()).toMatchObject({ devicesKnown: DEVICES, devicesOnline: DEVICES / 4, devicesInMemory: 1 });
    await processor.release();
  });

  it("a compare-and-set the server refuses is a conflict by its error code, whatever the message says", async () => {
    const refusing = (code: number, description: string): DeviceBucket =>
      ({
        update: async () => {
          throw new JetStreamApiError({ err_code: code, code: 400, description });
        },
      }) as unknown as DeviceBucket;
    const state = newDeviceState("m-1");
    const conflicting = new DeviceStore(refusing(10071, "expected last subject sequence mismatch"), silentLogger());
    await expect(conflicting.write(state, 3)).rejects.toBeInstanceOf(DeviceStoreConflictError);
    const unknown = new DeviceStore(refusing(10164, "last sequence unknown"), silentLogger());
    await expect(unknown.write(state, 3)).rejects.toBeInstanceOf(DeviceStoreConflictError);
    // Anything else is not a conflict, even when its text says "wrong last sequence".
    const other = new DeviceStore(refusing(10077, "wrong last sequence (not really)"), silentLogger());
    await expect(other.write(state, 3)).rejects.toBeInstanceOf(JetStreamApiError);

    // And the real server's refusal, both ways (create over an existing key, update at an old revision).
    const kv = await new Kvm(connection).create("conflicts", { history: 1 });
    const store = new DeviceStore(kv, silentLogger());
    const revision = await store.write(state, 0);
    await expect(store.write(state, 0)).rejects.toBeInstanceOf(DeviceStoreConflictError);
    await store.write(state, revision);
    await expect(store.write(state, revision)).rejects.toBeInstanceOf(DeviceStoreConflictError);
  });
});
