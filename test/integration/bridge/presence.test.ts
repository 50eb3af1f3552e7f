import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  headers as natsHeaders,
} from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import type { DeviceState } from "../../../src/bridge/devices/device-state.ts";
import { type PresenceSignal, presenceStreamNames } from "../../../src/bridge/devices/presence.ts";
import {
  EventType,
  eventHeaderEntries,
  type MachinePinotMessage,
  machineSubjects,
  SCHEMA_VERSION,
  subjectFor,
} from "../../../src/contracts/index.ts";
import { inventoryOf } from "../../fixtures/bridge/simulated-fleet.ts";
import { mintDecentralizedAuth } from "../../helpers/decentralized-auth.ts";
import { type DevicesHarness, startDevicesHarness } from "../../helpers/devices-harness.ts";
import { type ManualClock, manualClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const GROUP = "presence-test";
const HOUR_MS = 3_600_000;
/** Machines here beat every 10 s and are OFFLINE after 3 missed beats: 30 s of silence. */
const HEARTBEAT = { intervalSeconds: 10 };
const SILENCE_MS = 30_000;

/** Two accounts as a platform runs them; every machine its own NATS user, named after its machine id. */
const ACCOUNTS = [
  "accounts {",
  "  SYS: { users: [{ user: sys, password: sys }] }",
  "  APP: { jetstream: enabled, users: [",
  "    { user: app, password: app }",
  "    { user: m1, password: m1 }",
  "    { user: intruder, password: intruder }",
  "    { user: shared, password: shared }",
  "  ] }",
  "}",
  "system_account: SYS",
];

/**
 * The devices shard's presence on a real nats-server (its $SYS advisories included), its time
 * driven by a manual clock whose wall time the tests step as an operator or NTP would: presence
 * follows monotonic time and the server's clock, and identity follows what the server
 * authenticated, never the connection name.
 */
describe("presence: time and identity", () => {
  let server: NatsServerHandle | null = null;
  let app: NatsConnection;
  let clock: ManualClock;
  let harness: DevicesHarness;
  const connections: NatsConnection[] = [];

  const open = async (options: ConnectionOptions): Promise<NatsConnection> => {
    const connection = await connect({ servers: `nats://127.0.0.1:${server?.port}`, ...options });
    connections.push(connection);
    return connection;
  };

  const start = async (
    options: {
      configLines?: readonly string[];
      app?: ConnectionOptions;
      system?: ConnectionOptions;
      trustConnectionNames?: boolean;
    } = {},
  ): Promise<void> => {
    server = await startNatsServer({ configLines: options.configLines ?? ACCOUNTS });
    app = await open(options.app ?? { user: "app", pass: "app" });
    const system = await open(options.system ?? { user: "sys", pass: "sys" });
    await createPlatformStreams(app);
    // Real time as the manual clock's start: the server's clock and the bridge's agree until a test steps it.
    clock = manualClock(Date.now());
    harness = await startDevicesHarness({
      connection: app,
      systemConnection: system,
      clock,
      group: GROUP,
      identity: { trustConnectionNames: options.trustConnectionNames ?? false },
    });
  };

  /** A heartbeat on the connection the monitor listens on: once flushed, the monitor has seen it. */
  const beat = async (machineId: string, connection: NatsConnection = app): Promise<void> => {
    connection.publish(`machine.${machineId}.heartbeat`, JSON.stringify(HEARTBEAT));
    await connection.flush();
    if (connection !== app) await app.flush();
  };
  const signalsReach = (count: number): Promise<true> =>
    waitFor(`${count} presence signals published`, () => harness.signalsPublished() >= count);
  const statusesOf = (rows: readonly MachinePinotMessage[]): string[] =>
    rows.map((row) => `${row.machineId}:${row.status}`);
  const stateOf = async (machineId: string): Promise<DeviceState | null> => {
    const entry = await (await new Kvm(app).open(`${GROUP}-devices`)).get(machineId);
    return entry?.operation === "PUT" ? entry.json<DeviceState>() : null;
  };
  /** Every presence signal stored for the machine, in order. */
  const presenceSignals = async (machineId: string): Promise<PresenceSignal[]> => {
    const manager = await jetstreamManager(app);
    const names = presenceStreamNames(GROUP);
    const { state } = await manager.streams.info(names.stream);
    const signals: PresenceSignal[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const message = await manager.streams.getMessage(names.stream, { seq });
      if (message?.subject === `${names.subjectPrefix}.${machineId}`) signals.push(message.json<PresenceSignal>());
    }
    return signals;
  };
  /** Waits until the newest presence signal is `status` for the machine: every signal before it is stored. */
  const lastSignalIs = (machineId: string, status: string, reason: string): Promise<true> =>
    waitFor(`${machineId} ${status} (${reason}) signalled last`, async () => {
      const manager = await jetstreamManager(app);
      const names = presenceStreamNames(GROUP);
      const last = (await manager.streams.info(names.stream)).state.last_seq;
      if (last === 0) return false;
      const message = await manager.streams.getMessage(names.stream, { seq: last });
      const signal = message?.json<PresenceSignal>();
      return (
        message?.subject === `${names.subjectPrefix}.${machineId}` &&
        signal?.status === status &&
        signal.reason === reason
      );
    });

  afterEach(async () => {
    await harness?.stop();
    for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
    await server?.dispose();
    server = null;
  });

  it("the host's clock set back an hour: a machine gone silent still goes OFFLINE on time, in a row after its last", async () => {
    await start();
    await beat("m1");
    await signalsReach(1);
    const [online] = await harness.batch();
    expect(online).toMatchObject({ machineId: "m1", status: "ONLINE" });

    clock.shiftWallClock(-HOUR_MS);
    clock.advance(SILENCE_MS - 1_000);
    // Another machine's first beat: published after anything the silence would have caused by now.
    await beat("m2");
    await signalsReach(2);
    expect(statusesOf(await harness.batch())).toEqual(["m2:ONLINE"]);

    clock.advance(2_000);
    await signalsReach(3);
    const [offline] = await harness.batch();
    expect(offline).toMatchObject({ machineId: "m1", status: "OFFLINE" });
    expect((await stateOf("m1"))?.statusReason).toBe("missed-heartbeats");
    // Ordered by the server's clock: after the last row, never an hour before it.
    expect(offline?.ingestionTime).toBeGreaterThan(online?.ingestionTime ?? Number.POSITIVE_INFINITY);
  });

  it("the host's clock set forward 30 minutes: no machine flaps OFFLINE/ONLINE", async () => {
    await start();
    await beat("m1");
    await beat("m2");
    await signalsReach(2);
    expect(statusesOf(await harness.batch()).sort()).toEqual(["m1:ONLINE", "m2:ONLINE"]);

    clock.shiftWallClock(30 * 60_000);
    clock.advance(1_000);
    await beat("m1");
    await beat("m2");
    await beat("m3");
    await signalsReach(3);
    const rows = await harness.batch();
    expect(statusesOf(rows)).toEqual(["m3:ONLINE"]);
    expect(harness.signalsPublished()).toBe(3);
    // Stamped by the server's clock, not 30 minutes ahead with the bridge host's.
    expect(rows[0]?.ingestionTime).toBeLessThanOrEqual(Date.now());
  });

  it("a DISCONNECT after the host's clock stepped forward still makes its OFFLINE row, stamped by the server's clock", async () => {
    await start();
    const machine = await open({ user: "m1", pass: "m1", name: "m1" });
    await beat("m1", machine);
    await signalsReach(1);
    const [online] = await harness.batch();
    expect(online).toMatchObject({ machineId: "m1", status: "ONLINE" });

    clock.shiftWallClock(30 * 60_000);
    clock.advance(1_000);
    await beat("m1", machine);
    await machine.close();
    await lastSignalIs("m1", "OFFLINE", "server-disconnect");
    const rows = await harness.batch();
    expect(statusesOf(rows)).toEqual(["m1:OFFLINE"]);
    expect((await stateOf("m1"))?.statusReason).toBe("server-disconnect");
    const offline = rows[0] as MachinePinotMessage;
    expect(offline.ingestionTime).toBeGreaterThan(online?.ingestionTime ?? Number.POSITIVE_INFINITY);
    // Not 30 minutes ahead with the bridge host: the server's time of the disconnect.
    expect(offline.ingestionTime).toBeLessThanOrEqual(Date.now());
  });

  it("follows the authenticated user, not the connection name: a client naming itself m1 five times does not move m1", async () => {
    await start();
    const machine = await open({ user: "m1", pass: "m1", name: "m1" });
    await beat("m1", machine);
    await signalsReach(1);
    expect(statusesOf(await harness.batch())).toEqual(["m1:ONLINE"]);

    for (let round = 0; round < 5; round++) {
      const impostor = await open({ user: "intruder", pass: "intruder", name: "m1" });
      await impostor.close();
    }
    // The machine's own disconnect comes after the impostor's events: once signalled, they were all judged.
    await machine.close();
    await lastSignalIs("m1", "OFFLINE", "server-disconnect");
    expect((await presenceSignals("m1")).map((signal) => `${signal.status}:${signal.reason}`)).toEqual([
      "ONLINE:heartbeat",
      "OFFLINE:server-disconnect",
    ]);
    expect(statusesOf(await harness.batch())).toEqual(["m1:OFFLINE"]);
  });

  it("with decentralized auth, follows the name of the user JWT the server verified, not the connection name", async () => {
    const auth = await mintDecentralizedAuth();
    const creds = async (name: string): Promise<ConnectionOptions> => ({
      authenticator: credsAuthenticator(new TextEncoder().encode(await auth.userCreds(name))),
    });
    await start({
      configLines: auth.configLines,
      app: await creds("edge-bridge"),
      system: { authenticator: credsAuthenticator(new TextEncoder().encode(await auth.systemUserCreds("sys"))) },
    });
    const machine = await open({ ...(await creds("m1")), name: "m1" });
    await beat("m1", machine);
    await signalsReach(1);
    expect(statusesOf(await harness.batch())).toEqual(["m1:ONLINE"]);

    const impostorCreds = await creds("intruder");
    for (let round = 0; round < 3; round++) await (await open({ ...impostorCreds, name: "m1" })).close();
    await machine.close();
    await lastSignalIs("m1", "OFFLINE", "server-disconnect");
    expect((await presenceSignals("m1")).map((signal) => `${signal.status}:${signal.reason}`)).toEqual([
      "ONLINE:heartbeat",
      "OFFLINE:server-disconnect",
    ]);
  });

  it("trusts connection names only when told to (agents sharing one user in development)", async () => {
    await start({ trustConnectionNames: true });
    const machine = await open({ user: "shared", pass: "shared", name: "m1" });
    await beat("m1", machine);
    await signalsReach(1);
    expect(statusesOf(await harness.batch())).toEqual(["m1:ONLINE"]);
    await machine.close();
    await lastSignalIs("m1", "OFFLINE", "server-disconnect");
    expect(statusesOf(await harness.batch())).toEqual(["m1:OFFLINE"]);
  });

  it("gives a machine whose inventory comes before any status a first row that says ONLINE, never status null", async () => {
    await start();
    const headers = natsHeaders();
    for (const [name, value] of eventHeaderEntries({
      eventId: "inventory-1",
      eventType: EventType.inventory,
      machineId: "m9",
      timestamp: new Date().toISOString(),
      correlationId: "inventory-1",
      schemaVersion: SCHEMA_VERSION,
      sequence: 1,
    }))
      headers.set(name, value);
    await jetstream(app).publish(
      subjectFor(machineSubjects("m9"), EventType.inventory),
      JSON.stringify(inventoryOf("m9", { site: "lab" })),
      { headers },
    );
    const rows = await harness.batch();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ machineId: "m9", status: "ONLINE", osType: "LINUX", tagKeyValues: ["site:lab"] });
    expect((await stateOf("m9"))?.statusReason).toBe("inventory");
  });
});
