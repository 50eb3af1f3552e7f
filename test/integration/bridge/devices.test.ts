import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { murmur2 } from "@platformatic/kafka";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EVENT_STREAMS } from "../../../src/bridge/bridge.ts";
import type { DeviceState } from "../../../src/bridge/devices/device-state.ts";
import { DEFAULT_TOPICS, MachinePinotMessage } from "../../../src/contracts/index.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type BridgeProcess, startBridgeProcess } from "../../helpers/bridge-process.ts";
import { bridgeStatuses } from "../../helpers/bridge-verify.ts";
import { type KafkaBrokerHandle, startKafkaBroker } from "../../helpers/kafka-broker.ts";
import { type ReadRecord, readTopic } from "../../helpers/kafka-topic-reader.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const SHARDS = EVENT_STREAMS.length + 1;
const NINE_FIELDS = [
  "tenantId",
  "machineId",
  "organizationId",
  "deviceType",
  "status",
  "osType",
  "tags",
  "tagKeyValues",
  "ingestionTime",
];

/**
 * Two accounts, as a platform runs them: SYS (its connections see the server's $SYS events) and
 * APP, where the bridges and most agents share the user `app`, and two machines have identities of
 * their own, named after their machine ids, as the platform gives them; `intruder` is someone else.
 */
const ACCOUNTS = [
  "accounts {",
  "  SYS: { users: [{ user: sys, password: sys }] }",
  "  APP: { jetstream: enabled, users: [",
  "    { user: app, password: app }",
  "    { user: dev-sys, password: dev-sys }",
  "    { user: intruder, password: intruder }",
  "  ] }",
  "}",
  "system_account: SYS",
];

/**
 * devices-topic from real agents: OpenFrame's MachinePinotMessage rows, ONLINE/OFFLINE from
 * connection events, heartbeats and the server's own $SYS events, tags and OS from inventories.
 */
describe("edge-bridge: devices-topic from real agents", () => {
  let nats: NatsServerHandle;
  let kafka: KafkaBrokerHandle;
  let observer: NatsConnection;
  let appUrl: string;
  let systemUrl: string;
  let natsPort: number;
  const agents: AgentProcess[] = [];
  const bridges: BridgeProcess[] = [];

  const startAgent = async (machineId: string, env: Record<string, string> = {}): Promise<AgentProcess> => {
    const agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: appUrl,
      EDGE_AGENT_MACHINE_ID: machineId,
      EDGE_AGENT_HEARTBEAT_SECONDS: "1",
      EDGE_AGENT_LOG_LEVEL: "info",
      ...env,
    });
    agents.push(agent);
    return agent;
  };
  const startBridge = async (instanceId: string, env: Record<string, string> = {}): Promise<BridgeProcess> => {
    const bridge = await startBridgeProcess({
      EDGE_BRIDGE_NATS_URL: appUrl,
      EDGE_BRIDGE_KAFKA_BROKERS: kafka.bootstrap,
      EDGE_BRIDGE_INSTANCE_ID: instanceId,
      EDGE_BRIDGE_LEASE_SECONDS: "3",
      EDGE_BRIDGE_TENANT_ID: "tenant-1",
      EDGE_BRIDGE_ORGANIZATION_ID: "org-default",
      EDGE_BRIDGE_LOG_LEVEL: "debug",
      ...env,
    });
    bridges.push(bridge);
    return bridge;
  };
  const rows = async (machineId: string): Promise<ReadRecord[]> =>
    (await readTopic(kafka.bootstrap, DEFAULT_TOPICS.devices)).filter((record) => record.keyText === machineId);
  const lastRow = async (machineId: string): Promise<MachinePinotMessage | undefined> => {
    const all = await rows(machineId);
    return all.length === 0 ? undefined : MachinePinotMessage.parse(all[all.length - 1]?.json);
  };
  const deviceState = async (machineId: string): Promise<DeviceState | null> => {
    const entry = await (await new Kvm(observer).open("edge-bridge-devices")).get(machineId);
    return entry?.operation === "PUT" ? entry.json<DeviceState>() : null;
  };

  /** For a failing wait: what the bridge holds of the machine and what presence signals it sent. */
  const diagnose = async (machineId: string): Promise<string> => {
    const manager = await jetstreamManager(observer);
    const signals: string[] = [];
    const info = await manager.streams.info("EDGE_BRIDGE_PRESENCE").catch(() => null);
    for (let seq = info?.state.first_seq ?? 1; info && seq <= info.state.last_seq; seq++) {
      const message = await manager.streams.getMessage("EDGE_BRIDGE_PRESENCE", { seq }).catch(() => null);
      if (message) signals.push(`${message.subject}=${message.string()}`);
    }
    const logs = bridges.map((bridge) =>
      bridge
        .output()
        .split("\n")
        .filter(
          (line) =>
            line.includes('"shard":"devices"') ||
            line.includes("presence") ||
            line.includes('"warn"') ||
            line.includes('"error"'),
        )
        .slice(-25)
        .join("\n"),
    );
    return `\nstate: ${JSON.stringify(await deviceState(machineId))}\npresence signals: ${signals.join(" ")}\nrows: ${JSON.stringify((await rows(machineId)).map((record) => record.json))}\nbridge logs:\n${logs.join("\n---\n")}`;
  };
  const waitForRow = async (
    machineId: string,
    what: string,
    check: (row: MachinePinotMessage | undefined) => boolean,
    timeoutMs: number,
  ): Promise<void> => {
    await waitFor(what, async () => check(await lastRow(machineId)), timeoutMs).catch(async (error: unknown) => {
      throw new Error(`${(error as Error).message}${await diagnose(machineId)}`);
    });
  };

  beforeAll(async () => {
    [nats, kafka] = await Promise.all([startNatsServer({ configLines: ACCOUNTS }), startKafkaBroker()]);
    natsPort = nats.port;
    appUrl = `nats://app:app@127.0.0.1:${nats.port}`;
    systemUrl = `nats://sys:sys@127.0.0.1:${nats.port}`;
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: appUrl });
    expect(setup.code, setup.stderr).toBe(0);
    observer = await connect({ servers: `nats://127.0.0.1:${nats.port}`, user: "app", pass: "app" });
  }, 120_000);

  afterEach(async () => {
    await Promise.all([...agents.splice(0), ...bridges.splice(0)].map((process) => process.dispose()));
  });

  afterAll(async () => {
    await observer?.close();
    await kafka?.dispose();
    await nats?.dispose();
  });

  it("writes full OpenFrame rows per machine: nine fields, key = machine id, Java's partition, the Spring type header, OFFLINE after missed heartbeats, ONLINE again, new tags at once", async () => {
    await startBridge("devices-a");
    await startAgent("dev-acme", { EDGE_AGENT_TAGS: "organization=acme,site=lab" });
    const plain = await startAgent("dev-plain", { EDGE_AGENT_TAGS: "site=edge" });

    for (const machineId of ["dev-acme", "dev-plain"]) {
      await waitFor(
        `${machineId} ONLINE with its inventory`,
        async () => {
          const row = await lastRow(machineId);
          return row?.status === "ONLINE" && row.osType === "LINUX" && row;
        },
        60_000,
      );
    }
    const acme = await rows("dev-acme");
    const newest = acme[acme.length - 1] as ReadRecord;
    expect(Object.keys(newest.json as object)).toEqual(NINE_FIELDS);
    expect(newest.json).toMatchObject({
      tenantId: "tenant-1",
      machineId: "dev-acme",
      organizationId: "acme",
      status: "ONLINE",
      osType: "LINUX",
      tags: ["organization", "site"],
      tagKeyValues: ["organization:acme", "site:lab"],
    });
    expect(["DESKTOP", "LAPTOP", "SERVER", "VIRTUAL_MACHINE", "OTHER"]).toContain(
      (newest.json as MachinePinotMessage).deviceType,
    );
    expect(newest.header("__TypeId__")).toBe("com.openframe.kafka.model.MachinePinotMessage");
    // The partition Kafka's Java producer would pick (checked against Java itself in kafka-broker.test.ts).
    expect(newest.partition).toBe((murmur2(Buffer.from("dev-acme")) & 0x7fffffff) % 3);
    expect((await lastRow("dev-plain"))?.organizationId).toBe("org-default");
    // ingestionTime rises, row after row.
    const times = acme.map((record) => (record.json as MachinePinotMessage).ingestionTime);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(new Set(times).size).toBe(times.length);

    // Killed without a word, once the bridge has its heartbeats (and so its 1 s interval): OFFLINE
    // once three are missed; the other stays ONLINE.
    await waitFor(
      "dev-plain's interval known",
      async () => (await deviceState("dev-plain"))?.heartbeatSeconds === 1,
      30_000,
    );
    await plain.stop("SIGKILL");
    await waitForRow("dev-plain", "dev-plain OFFLINE", (row) => row?.status === "OFFLINE", 30_000);
    expect((await deviceState("dev-plain"))?.statusReason).toBe("missed-heartbeats");
    expect((await rows("dev-acme")).map((record) => (record.json as MachinePinotMessage).status)).not.toContain(
      "OFFLINE",
    );

    // Back: ONLINE again.
    await startAgent("dev-plain", { EDGE_AGENT_TAGS: "site=edge" });
    await waitForRow("dev-plain", "dev-plain ONLINE again", (row) => row?.status === "ONLINE", 30_000);

    // New tags by remote configuration reach devices-topic at once (the agent sends its inventory on a tag change).
    const set = await runCli(
      ["config", "set", "--machine", "dev-acme", "tags", JSON.stringify({ organization: "globex", site: "lab" })],
      { EDGE_AGENT_NATS_URL: appUrl },
    );
    expect(set.code, set.stderr).toBe(0);
    await waitFor(
      "dev-acme's new organization",
      async () => (await lastRow("dev-acme"))?.organizationId === "globex",
      30_000,
    );
    expect(await lastRow("dev-acme")).toMatchObject({
      tags: ["organization", "site"],
      tagKeyValues: ["organization:globex", "site:lab"],
      status: "ONLINE",
    });
  }, 180_000);

  it("with a system-account connection, marks a machine OFFLINE from the server's own DISCONNECT of its identity, long before its heartbeats are missed; a client merely naming itself after it moves nothing", async () => {
    await startBridge("devices-sys", { EDGE_BRIDGE_SYSTEM_NATS_URL: systemUrl });
    // Its own NATS identity, and a 20 s heartbeat: missing three would take a minute.
    const agent = await startAgent("dev-sys", {
      EDGE_AGENT_HEARTBEAT_SECONDS: "20",
      EDGE_AGENT_NATS_URL: `nats://dev-sys:dev-sys@127.0.0.1:${natsPort}`,
    });
    await waitFor("dev-sys ONLINE", async () => (await lastRow("dev-sys"))?.status === "ONLINE", 60_000);
    const rowsBefore = (await rows("dev-sys")).length;
    for (let round = 0; round < 5; round++) {
      const impostor = await connect({
        servers: `nats://127.0.0.1:${natsPort}`,
        user: "intruder",
        pass: "intruder",
        name: "dev-sys",
      });
      await impostor.close();
    }
    await agent.stop("SIGKILL");
    await waitForRow("dev-sys", "dev-sys OFFLINE", (row) => row?.status === "OFFLINE", 20_000);
    expect((await deviceState("dev-sys"))?.statusReason).toBe("server-disconnect");
    // The impostor's connects and disconnects came first, and made no row.
    expect(
      (await rows("dev-sys")).slice(rowsBefore).map((record) => (record.json as MachinePinotMessage).status),
    ).toEqual(["OFFLINE"]);
  }, 120_000);

  it("trusts connection names only when told to, for agents sharing one user, and says so at start", async () => {
    const bridge = await startBridge("devices-names", {
      EDGE_BRIDGE_SYSTEM_NATS_URL: systemUrl,
      EDGE_BRIDGE_TRUST_CONNECTION_NAMES: "true",
    });
    await waitFor("the warning", () => bridge.output().includes('"setting":"trustConnectionNames"'), 30_000);
    const agent = await startAgent("dev-shared", { EDGE_AGENT_HEARTBEAT_SECONDS: "20" });
    await waitFor("dev-shared ONLINE", async () => (await lastRow("dev-shared"))?.status === "ONLINE", 60_000);
    await agent.stop("SIGKILL");
    await waitForRow("dev-shared", "dev-shared OFFLINE", (row) => row?.status === "OFFLINE", 20_000);
    expect((await deviceState("dev-shared"))?.statusReason).toBe("server-disconnect");
  }, 120_000);

  it("with two bridge instances, the one judging presence dies: the other takes over, live machines stay ONLINE, a dead one still goes OFFLINE", async () => {
    const first = await startBridge("devices-x");
    const second = await startBridge("devices-y");
    await startAgent("dev-live");
    const doomed = await startAgent("dev-doomed");
    for (const machineId of ["dev-live", "dev-doomed"])
      await waitFor(`${machineId} ONLINE`, async () => (await lastRow(machineId))?.status === "ONLINE", 60_000);
    // The interval is in the shared state, so the next judge knows it after a takeover.
    for (const machineId of ["dev-live", "dev-doomed"])
      await waitFor(
        `${machineId}'s interval known`,
        async () => (await deviceState(machineId))?.heartbeatSeconds === 1,
        30_000,
      );
    const statuses = await waitFor(
      "both instances with shards",
      async () => {
        const found = await bridgeStatuses(observer);
        return (
          found.length === 2 && found.reduce((total, status) => total + status.shardsHeld.length, 0) === SHARDS && found
        );
      },
      60_000,
    );
    const judge = statuses.find((status) => status.shardsHeld.includes("devices"));
    const [dying, surviving] = judge?.instanceId === "devices-x" ? [first, second] : [second, first];
    const liveRowsBefore = (await rows("dev-live")).length;

    await dying.stop("SIGKILL");
    await doomed.stop("SIGKILL");
    await waitFor(
      "the survivor judges presence now",
      async () =>
        (await bridgeStatuses(observer)).some(
          (status) => status.pid === surviving.child.pid && status.shardsHeld.includes("devices"),
        ),
      30_000,
    );
    await waitForRow("dev-doomed", "dev-doomed OFFLINE", (row) => row?.status === "OFFLINE", 30_000);
    // A new owner gives live machines a full grace period: no false OFFLINE. The marker: a machine
    // that comes and goes silent after the takeover. Its OFFLINE row is written after a pass that
    // judged dev-live too, and readable only once every row written before it is.
    const marker = await startAgent("dev-marker");
    await waitFor(
      "dev-marker's interval known",
      async () => (await deviceState("dev-marker"))?.heartbeatSeconds === 1,
      30_000,
    );
    await marker.stop("SIGKILL");
    await waitForRow("dev-marker", "dev-marker OFFLINE", (row) => row?.status === "OFFLINE", 30_000);
    expect((await deviceState("dev-marker"))?.statusReason).toBe("missed-heartbeats");
    const liveRows = await rows("dev-live");
    expect(liveRows.slice(liveRowsBefore).map((record) => (record.json as MachinePinotMessage).status)).not.toContain(
      "OFFLINE",
    );
    expect((await lastRow("dev-live"))?.status).toBe("ONLINE");
  }, 180_000);
});
