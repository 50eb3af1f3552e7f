import { Svcm } from "@nats-io/services";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  ClientConnectionEvent,
  ConfigStatus,
  HostnameMessage,
  InstalledAgentMessage,
  Inventory,
  OutboxGauge,
  TelemetrySample,
} from "../../../src/contracts/index.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream, type StoredMessage } from "../../helpers/stream-reader.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const REQUIRED_HEADERS = [
  "Nats-Msg-Id",
  "X-Event-ID",
  "X-Event-Type",
  "X-Machine-ID",
  "X-Timestamp",
  "X-Correlation-ID",
  "X-Schema-Version",
  "X-Sequence",
];

describe("edge-agent run against a real nats-server", () => {
  let server: NatsServerHandle;
  let observer: NatsConnection;
  let agent: AgentProcess | undefined;

  beforeEach(async () => {
    server = await startNatsServer();
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(setup.code, setup.stderr).toBe(0);
    expect(setup.stdout).toContain("stream CLIENT_CONNECTIONS: created");
    observer = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await observer.close();
    await server.dispose();
  });

  const eventsIn = async (stream: string): Promise<StoredMessage[]> => readStream(observer, stream);

  it("announces itself, reports CONNECT, answers health and $SRV discovery, and exits cleanly on SIGTERM", async () => {
    const heartbeats: Array<{ data: string; hasHeaders: boolean }> = [];
    const heartbeatSub = observer.subscribe("machine.it-1.heartbeat", {
      callback: (_error, message) => {
        heartbeats.push({ data: message.string(), hasHeaders: message.headers !== undefined });
      },
    });
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "it-1",
      EDGE_AGENT_HEARTBEAT_SECONDS: "1",
    });

    const installed = await waitFor("installed-agent", async () => (await eventsIn("INSTALLED_AGENTS"))[0]);
    expect(installed.subject).toBe("machine.it-1.installed-agent");
    expect(InstalledAgentMessage.parse(installed.body)).toEqual({
      machineId: "it-1",
      agentType: "edge-agent",
      version: expect.any(String),
    });
    const hostname = await waitFor("hostname", async () => (await eventsIn("MACHINE_HOSTNAME"))[0]);
    expect(HostnameMessage.parse(hostname.body).hostname.length).toBeGreaterThan(0);
    const connected = await waitFor("CONNECT", async () =>
      (await eventsIn("CLIENT_CONNECTIONS")).find((message) => (message.body as { type?: string }).type === "CONNECT"),
    );
    expect(ClientConnectionEvent.parse(connected.body)).toMatchObject({ client: { name: "it-1" }, type: "CONNECT" });

    for (const message of [installed, hostname, connected]) {
      for (const header of REQUIRED_HEADERS)
        expect(message.headers[header], `${message.subject} ${header}`).toBeTruthy();
      expect(message.headers["Nats-Msg-Id"]).toBe(message.headers["X-Event-ID"]);
      expect(message.headers["X-Machine-ID"]).toBe("it-1");
    }
    // One device sequence across all subjects, starting at 1: the announcement first.
    expect(Number(installed.headers["X-Sequence"])).toBe(1);
    expect(Number(hostname.headers["X-Sequence"])).toBe(2);
    expect(Number(connected.headers["X-Sequence"])).toBeGreaterThan(2);

    const pings = [];
    for await (const ping of await new Svcm(observer).client({ strategy: "timer", maxWait: 1_000 }).ping("edge-agent"))
      pings.push(ping);
    expect(pings.map((ping) => ping.metadata?.machineId)).toContain("it-1");

    const health = (await observer.request("machine.it-1.rpc.health", "", { timeout: 3_000 })).json<{
      status: string;
      machineId: string;
    }>();
    expect(health).toMatchObject({ status: "ok", machineId: "it-1" });
    const status = (await observer.request("machine.it-1.rpc.status", "", { timeout: 3_000 })).json<{
      connection: { state: string };
      outbox: { pendingCount: number };
    }>();
    expect(status.connection.state).toBe("connected");

    await waitFor("two heartbeats", () => heartbeats.length >= 2);
    // No headers (presence is not an event); the body names the interval the machine beats at.
    expect(heartbeats[0]).toEqual({ data: JSON.stringify({ intervalSeconds: 1 }), hasHeaders: false });
    heartbeatSub.unsubscribe();

    const exit = await agent.stop("SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(agent.logs().some((line) => line.msg === "edge-agent stopped")).toBe(true);
  });

  it("records DISCONNECT while the server is down and delivers it, then RECONNECT, once the server is back", async () => {
    agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "it-2" });
    await waitFor("CONNECT", async () => (await eventsIn("CLIENT_CONNECTIONS")).length >= 1);

    await server.kill();
    const running = agent;
    await waitFor("the agent to log the disconnect", () =>
      running.logs().some((line) => String(line.msg).startsWith("disconnected from NATS")),
    );
    await server.start();

    const events = await waitFor(
      "DISCONNECT and RECONNECT",
      async () => {
        const all = await eventsIn("CLIENT_CONNECTIONS");
        return all.length >= 3 ? all : undefined;
      },
      45_000,
    );
    const bodies = events.map((message) => ClientConnectionEvent.parse(message.body));
    expect(bodies.map((body) => body.type)).toEqual(["CONNECT", "DISCONNECT", "RECONNECT"]);
    const [, disconnect, reconnect] = bodies;
    expect(Date.parse(disconnect?.timestamp ?? "")).toBeLessThanOrEqual(Date.parse(reconnect?.timestamp ?? ""));
    expect(reconnect?.disconnectedAt).toBe(disconnect?.timestamp);
    const sequences = events.map((message) => Number(message.headers["X-Sequence"]));
    expect([...sequences].sort((a, b) => a - b)).toEqual(sequences);
  });

  it("starts with no server reachable, keeps its events, reports status from its local file, and delivers once the server appears", async () => {
    await server.stop();
    agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "it-3" });
    const offlineAgent = agent;
    await waitFor("the offline start to be logged", () =>
      offlineAgent.logs().some((line) => String(line.msg).startsWith("connecting to NATS")),
    );
    const status = await waitFor("a local status answer", async () => {
      const result = await runCli(["status", "--json"], {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_DATA_DIR: offlineAgent.dataDir,
        EDGE_AGENT_CONFIG_DIR: offlineAgent.configDir,
      });
      return result.code === 0
        ? (JSON.parse(result.stdout) as { source: string; status: { outbox: { pendingCount: number } } })
        : undefined;
    });
    expect(status.source).toBe("local-file");
    expect(status.status.outbox.pendingCount).toBeGreaterThanOrEqual(2);

    await server.start();
    await waitFor(
      "installed-agent after the server appears",
      async () => (await eventsIn("INSTALLED_AGENTS")).length === 1,
      45_000,
    );
    const human = await runCli(["status"], {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "it-3",
      EDGE_AGENT_DATA_DIR: offlineAgent.dataDir,
      EDGE_AGENT_CONFIG_DIR: offlineAgent.configDir,
    });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain("live answer from the running agent");
    expect(human.stdout).toMatch(/connection: connected to 127\.0\.0\.1:\d+/);
  });

  it("sends telemetry, the outbox gauge and the inventory through the outbox, and answers rpc.collect", async () => {
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "it-4",
      EDGE_AGENT_TELEMETRY_SCHEDULE: "* * * * * *",
      EDGE_AGENT_TAGS: "site=lab",
    });
    const samples = await waitFor(
      "two telemetry samples",
      async () => {
        const stored = (await eventsIn("TELEMETRY")).filter((message) => message.subject === "machine.it-4.telemetry");
        return stored.length >= 2 ? stored : undefined;
      },
      30_000,
    );
    const sample = TelemetrySample.parse(samples[1]?.body);
    expect(sample).toMatchObject({ machineId: "it-4", tagKeyValues: ["site:lab"] });
    expect(sample.cpu).not.toBeNull();
    expect(samples[1]?.headers["X-Event-Type"]).toBe("telemetry");

    const gauge = await waitFor("an outbox gauge", async () =>
      (await eventsIn("TELEMETRY")).find((message) => message.subject === "machine.it-4.outbox"),
    );
    expect(OutboxGauge.parse(gauge.body).lastSequence).toBeGreaterThan(0);

    const inventory = await waitFor("the inventory", async () => (await eventsIn("INVENTORY"))[0], 30_000);
    expect(Inventory.parse(inventory.body)).toMatchObject({
      machineId: "it-4",
      osType: "LINUX",
      tagKeyValues: ["site:lab"],
    });

    const collected = (await observer.request("machine.it-4.rpc.collect", "", { timeout: 5_000 })).json<unknown>();
    expect(TelemetrySample.parse(collected).machineId).toBe("it-4");
  });

  it("takes `edge-agent config set --machine ID heartbeatSeconds 2` live: the heartbeat really speeds up", async () => {
    const beats: number[] = [];
    observer.subscribe("machine.it-5.heartbeat", { callback: () => void beats.push(Date.now()) });
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "it-5",
      EDGE_AGENT_HEARTBEAT_SECONDS: "3600",
    });
    await waitFor("the first beat", () => beats.length === 1);

    const set = await runCli(["config", "set", "--machine", "it-5", "heartbeatSeconds", "2"], {
      EDGE_AGENT_NATS_URL: server.url,
    });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/machine\.it-5: revision \d+/);
    const applied = await waitFor("config.status APPLIED", async () =>
      (await eventsIn("CONFIG_STATUS")).find((message) => ConfigStatus.parse(message.body).status === "APPLIED"),
    );
    expect(applied.subject).toBe("machine.it-5.config.status");
    // With a one-hour interval only the start beat would come; three more mean the new interval runs.
    await waitFor("beats every two seconds", () => beats.length >= 4, 20_000);

    const status = await runCli(["status", "--json"], {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "it-5",
    });
    expect(JSON.parse(status.stdout).status).toMatchObject({
      heartbeatSeconds: 2,
      capabilities: { config: { lastStatus: { status: "APPLIED" } } },
    });

    const refused = await runCli(["config", "set", "--machine", "it-5", "heartbeatSeconds", "0"], {
      EDGE_AGENT_NATS_URL: server.url,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/heartbeatSeconds/);
  });

  it("takes a log level live: `config set logLevel error` silences the info lines of its components, `info` brings them back", async () => {
    const running = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "it-6",
      EDGE_AGENT_LOG_LEVEL: "info",
    });
    agent = running;
    await waitFor("connected", () => running.logs().some((line) => line.msg === "connected to NATS"), 20_000);
    const applied = async (count: number): Promise<void> => {
      await waitFor(
        `${count} APPLIED`,
        async () =>
          (await eventsIn("CONFIG_STATUS")).filter((message) => ConfigStatus.parse(message.body).status === "APPLIED")
            .length >= count,
        20_000,
      );
    };
    const appliedLines = (): Array<Record<string, unknown>> =>
      running.logs().filter((line) => line.msg === "remote configuration applied");
    const set = async (key: string, value: string): Promise<void> => {
      const result = await runCli(["config", "set", "--machine", "it-6", key, value], {
        EDGE_AGENT_NATS_URL: server.url,
      });
      expect(result.code, result.stderr).toBe(0);
    };

    await set("heartbeatSeconds", "30");
    await applied(1);
    await waitFor("the info line of that apply", () => appliedLines().length === 1);
    // The new level is applied before the line about it would be written: nothing at info from now on.
    await set("logLevel", "error");
    await applied(2);
    await set("heartbeatSeconds", "31");
    await applied(3);
    await set("logLevel", "info");
    await applied(4);
    await waitFor("info lines again", () => appliedLines().length === 2);
    expect(appliedLines().map((line) => line.component)).toEqual(["remote-config", "remote-config"]);
  });

  it.each([
    [{ EDGE_AGENT_MACHINE_ID: "not.safe" }, /invalid setting EDGE_AGENT_MACHINE_ID/],
    [{ EDGE_AGENT_NATS_URL: "nats://[::1" }, /invalid setting EDGE_AGENT_NATS_URL/],
    [{ EDGE_AGENT_TELEMETRY_SCHEDULE: "61 * * * * *" }, /invalid setting EDGE_AGENT_TELEMETRY_SCHEDULE/],
  ])("refuses bad settings %j with one line and exit code 2", async (env, message) => {
    const result = await runCli(["run"], {
      EDGE_AGENT_DATA_DIR: server.storeDir,
      EDGE_AGENT_CONFIG_DIR: server.storeDir,
      ...env,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });
});
