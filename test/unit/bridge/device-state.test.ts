import { describe, expect, it } from "vitest";
import {
  applySignal,
  coveredBy,
  type DeviceSignal,
  newDeviceState,
  nextDeviceState,
  rowFields,
} from "../../../src/bridge/devices/device-state.ts";

const context = { tenantId: "tenant-1", organizationId: "org-default", organizationTag: "organization" };
const online = (atMs: number): DeviceSignal => ({
  kind: "status",
  status: "ONLINE",
  atMs,
  reason: "heartbeat",
  heartbeatSeconds: 30,
});
const offline = (atMs: number): DeviceSignal => ({
  kind: "status",
  status: "OFFLINE",
  atMs,
  reason: "missed-heartbeats",
});
const inventory = (sequence: number, tags: Record<string, string>, atMs = 1_000): DeviceSignal => ({
  kind: "inventory",
  osType: "LINUX",
  deviceType: "SERVER",
  tags: Object.keys(tags),
  tagKeyValues: Object.entries(tags).map(([key, value]) => `${key}:${value}`),
  sequence,
  atMs,
});

describe("device state", () => {
  it("keeps the newest status by time: a late DISCONNECT from before the heartbeats came back changes nothing", () => {
    const state = [
      online(2_000),
      { kind: "status", status: "OFFLINE", atMs: 1_500, reason: "connection-event" } as DeviceSignal,
    ].reduce(applySignal, newDeviceState("m1"));
    expect(state.status).toBe("ONLINE");
    expect(state.heartbeatSeconds).toBe(30);
    expect([offline(3_000), online(2_500)].reduce(applySignal, state).status).toBe("OFFLINE");
  });

  it("keeps the newest inventory by the device's own sequence, whatever the order it arrives in", () => {
    const newerFirst = [inventory(9, { site: "b" }), inventory(4, { site: "a" })].reduce(
      applySignal,
      newDeviceState("m1"),
    );
    const olderFirst = [inventory(4, { site: "a" }), inventory(9, { site: "b" })].reduce(
      applySignal,
      newDeviceState("m1"),
    );
    expect(newerFirst.tagKeyValues).toEqual(["site:b"]);
    expect(olderFirst).toEqual(newerFirst);
    // Applying a signal again is a no-op (a redelivery).
    expect(applySignal(newerFirst, inventory(9, { site: "b" }))).toBe(newerFirst);
  });

  it("builds OpenFrame's nine fields: organization from its tag, else the setting", () => {
    const tagged = applySignal(newDeviceState("m1"), inventory(1, { organization: "acme", site: "lab" }));
    expect(rowFields(tagged, context)).toEqual({
      tenantId: "tenant-1",
      machineId: "m1",
      organizationId: "acme",
      deviceType: "SERVER",
      status: null,
      osType: "LINUX",
      tags: ["organization", "site"],
      tagKeyValues: ["organization:acme", "site:lab"],
    });
    expect(rowFields(applySignal(newDeviceState("m1"), inventory(1, { site: "lab" })), context).organizationId).toBe(
      "org-default",
    );
  });

  it("writes a row only when a field changes, with a rising ingestionTime", () => {
    const positions = { committed: { CLIENT_CONNECTIONS: 10 }, afterBatch: { CLIENT_CONNECTIONS: 12 } };
    const first = nextDeviceState(newDeviceState("m1"), [online(5_000)], positions, context);
    expect(first.row).toMatchObject({ machineId: "m1", status: "ONLINE", ingestionTime: 5_000 });
    expect(first.state.pending).toEqual({ positions: { CLIENT_CONNECTIONS: 12 } });
    // A heartbeat a little later changes no field: no row.
    const later = nextDeviceState(
      first.state,
      [online(6_000)],
      { committed: { CLIENT_CONNECTIONS: 12 }, afterBatch: { CLIENT_CONNECTIONS: 13 } },
      context,
    );
    expect(later.row).toBeNull();
    // A signal stamped earlier than the last row still gets a later ingestionTime: Pinot keeps the newest.
    const inventoryRow = nextDeviceState(
      later.state,
      [inventory(3, { site: "lab" }, 1_000)],
      { committed: { CLIENT_CONNECTIONS: 13 }, afterBatch: { CLIENT_CONNECTIONS: 14 } },
      context,
    );
    expect(inventoryRow.row?.ingestionTime).toBe(5_001);
  });

  it("writes the same row again when the transaction that wrote it is not covered by the checkpoint (aborted), and never twice once it is", () => {
    const written = nextDeviceState(
      newDeviceState("m1"),
      [online(5_000)],
      { committed: { S: 10 }, afterBatch: { S: 12 } },
      context,
    );
    // The transaction never committed: the checkpoint is still at 10, and the events come again.
    const again = nextDeviceState(
      written.state,
      [online(5_000)],
      { committed: { S: 10 }, afterBatch: { S: 12 } },
      context,
    );
    expect(again.row).toEqual(written.row);
    // It committed: nothing to write for the same events.
    const committed = nextDeviceState(
      again.state,
      [online(5_000)],
      { committed: { S: 12 }, afterBatch: { S: 13 } },
      context,
    );
    expect(committed.row).toBeNull();
  });

  it("coveredBy needs every stream's position reached", () => {
    expect(coveredBy({ A: 5, B: 2 }, { A: 5, B: 3 })).toBe(true);
    expect(coveredBy({ A: 5, B: 2 }, { A: 4, B: 3 })).toBe(false);
    expect(coveredBy({ A: 5 }, {})).toBe(false);
  });

  it("ends in the same state whatever order a machine's signals arrive in, an inventory's ONLINE among them", () => {
    const signals: DeviceSignal[] = [
      { kind: "status", status: "ONLINE", atMs: 1_000, reason: "connection-event" },
      { kind: "status", status: "OFFLINE", atMs: 2_000, reason: "server-disconnect" },
      inventory(3, { site: "a" }, 2_500),
      { kind: "status", status: "ONLINE", atMs: 2_600, reason: "inventory" },
      { kind: "status", status: "OFFLINE", atMs: 1_500, reason: "connection-event" },
    ];
    const permutations = (items: readonly DeviceSignal[]): DeviceSignal[][] =>
      items.length <= 1
        ? [[...items]]
        : items.flatMap((item, index) =>
            permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
          );
    const ends = new Set(
      permutations(signals).map((order) => JSON.stringify(order.reduce(applySignal, newDeviceState("m1")))),
    );
    expect(ends.size).toBe(1);
    const state = JSON.parse([...ends][0] as string);
    expect(state).toMatchObject({ status: "ONLINE", statusReason: "inventory", statusAtMs: 2_600 });
  });
});
