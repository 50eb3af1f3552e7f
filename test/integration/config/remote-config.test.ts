import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type ConfigurableComponent,
  configSet,
  createRemoteConfig,
  LAST_GOOD_FILE,
  type RemoteConfig,
  remoteConfigRoute,
} from "../../../src/config/index.ts";
import type { AgentConfiguration, ConfigStatus } from "../../../src/contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../../../src/events/event-sink.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { createCommandTrust, signDocument } from "../../../src/trust/index.ts";
import { startTestCommands, type TestCommands } from "../../helpers/command-desk.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner } from "../../helpers/signing.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const baseline: AgentConfiguration = {
  revision: 0,
  heartbeatSeconds: 60,
  telemetrySchedule: "0 * * * * *",
  tags: { site: "local" },
};

describe("remote configuration over a real JetStream KV bucket", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let agentConnection: NatsConnection;
  let kv: KV;
  let configDir: string;
  let remote: RemoteConfig | undefined;
  /** The agent's command side (its inbox lives in `commandsDir`, kept across the agent's restarts). */
  let commands: TestCommands | undefined;
  let commandsDir: string;
  let events: OutgoingEvent[];
  let heartbeatSeconds: number;
  let failTelemetry: boolean;

  const statuses = (): ConfigStatus[] =>
    events.filter((event) => event.type === "config.status").map((event) => event.body as ConfigStatus);
  const sink: EventSink = {
    emit: async (event) => {
      events.push(event);
      return { eventId: String(events.length), sequence: events.length };
    },
  };
  const components: ConfigurableComponent[] = [
    {
      name: "heartbeat",
      apply: (next) => {
        heartbeatSeconds = next.heartbeatSeconds ?? heartbeatSeconds;
      },
    },
    {
      name: "telemetry",
      apply: (next) => {
        if (failTelemetry && next.telemetrySchedule === "*/5 * * * * *")
          throw new Error("collector refused the schedule");
      },
    },
  ];
  /** An agent's remote configuration and command side, started (offline: never attached). */
  const makeRemote = async (
    signingPublicKey?: string,
    retry?: { baseMs: number; maxMs: number },
  ): Promise<RemoteConfig> => {
    commands = await startTestCommands({
      machineId: "m1",
      dataDir: commandsDir,
      onResult: (event) => events.push(event),
      checkEveryMs: 60_000,
      ...(retry ? { retry } : {}),
    });
    const made = createRemoteConfig({
      machineId: "m1",
      configDir,
      clock: systemClock,
      logger: silentLogger(),
      sink,
      components,
      baseline,
      trust: createCommandTrust({
        publicKey: signingPublicKey,
        allowUnsigned: true,
        dataDir: configDir,
        clock: systemClock,
        logger: silentLogger(),
      }),
    });
    commands.commands.route(remoteConfigRoute("m1", made));
    await made.start();
    return made;
  };
  /** The link is up: the agent reads its configuration keys. */
  const attach = (): void => commands?.attach(agentConnection);
  const stopRemote = async (): Promise<void> => {
    await commands?.stop({ keepDataDir: true });
    await remote?.stop();
    commands = undefined;
  };

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    agentConnection = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    kv = await new Kvm(operator).create("agent-config", { history: 10 });
    configDir = await mkdtemp(join(tmpdir(), "edge-agent-config-"));
    commandsDir = await mkdtemp(join(tmpdir(), "edge-agent-config-commands-"));
    events = [];
    heartbeatSeconds = 60;
    failTelemetry = false;
  });

  afterEach(async () => {
    await stopRemote();
    remote = undefined;
    await rm(commandsDir, { recursive: true, force: true });
    await agentConnection.close();
    await operator.close();
    await server.dispose();
    await rm(configDir, { recursive: true, force: true });
  });

  it("applies a push live, machine over defaults, reports APPLIED, and never applies a revision twice", async () => {
    await kv.put("defaults", JSON.stringify({ heartbeatSeconds: 30, tags: { fleet: "a" } }));
    remote = await makeRemote();
    attach();
    await waitFor("the defaults", () => heartbeatSeconds === 30);

    const { revision } = await configSet(operator, { machineId: "m1" }, "heartbeatSeconds", "2");
    await waitFor("the machine's own value", () => heartbeatSeconds === 2);
    await waitFor("its status", () => statuses().length === 2);
    expect(remote.current()).toMatchObject({ revision, heartbeatSeconds: 2, tags: { site: "local", fleet: "a" } });
    expect(statuses().map((status) => status.status)).toEqual(["APPLIED", "APPLIED"]);
    expect(statuses()[1]?.revision).toBe(revision);

    // Removing the machine's key falls back to the defaults.
    await kv.delete("machine.m1");
    await waitFor("the fallback", () => heartbeatSeconds === 30);
  });

  it("rejects an invalid document and keeps running the old one", async () => {
    remote = await makeRemote();
    attach();
    await configSet(operator, { machineId: "m1" }, "heartbeatSeconds", "5");
    await waitFor("the first revision", () => heartbeatSeconds === 5);
    const bad = await kv.put("machine.m1", JSON.stringify({ heartbeatSeconds: -1 }));
    await kv.put("defaults", "{not json");
    await waitFor("two rejections", () => statuses().filter((status) => status.status === "REJECTED").length === 2);
    // The two keys are watched separately: their rejections may come in either order.
    const rejected = statuses().filter((status) => status.status === "REJECTED");
    expect(rejected.find((status) => status.revision === bad)?.error).toMatch(/heartbeatSeconds/);
    expect(rejected.find((status) => status.revision !== bad)?.error).toMatch(/not JSON/);
    expect(heartbeatSeconds).toBe(5);
  });

  it("rejects tags that are each within bounds but too many bytes once defaults and machine merge", async () => {
    const tags = (prefix: string): Record<string, string> =>
      Object.fromEntries(Array.from({ length: 25 }, (_, index) => [`${prefix}${index}`, "v".repeat(100)]));
    remote = await makeRemote();
    attach();
    await kv.put("defaults", JSON.stringify({ tags: tags("d") }));
    await waitFor("the defaults", () => statuses().length === 1);
    await kv.put("machine.m1", JSON.stringify({ heartbeatSeconds: 3, tags: tags("m") }));
    await waitFor("the merge refused", () => statuses().length === 2);
    expect(statuses()[1]).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(
        /^the merged configuration is invalid: tags: tags take \d+ bytes in all, at most 4096$/,
      ),
    });
    expect(heartbeatSeconds).toBe(60);
  });

  it("rolls every component back when one refuses, and reports ROLLED_BACK", async () => {
    failTelemetry = true;
    remote = await makeRemote();
    attach();
    await kv.put("machine.m1", JSON.stringify({ heartbeatSeconds: 7, telemetrySchedule: "*/5 * * * * *" }));
    await waitFor("the outcome", () => statuses().length === 1);
    expect(statuses()[0]).toMatchObject({ status: "ROLLED_BACK", error: "telemetry: collector refused the schedule" });
    expect(heartbeatSeconds).toBe(60);
    expect(remote.current().revision).toBe(0);
  });

  it("with a signing key, applies a correctly signed document and rejects unsigned, wrongly signed or scope-less ones", async () => {
    const trusted = createSigner();
    const stranger = createSigner();
    remote = await makeRemote(trusted.publicKey);
    attach();
    // One at a time: a key is a `latest` feed, so revisions put faster than it is read are superseded.
    await kv.put("machine.m1", JSON.stringify({ heartbeatSeconds: 9 }));
    await waitFor("the first rejection", () => statuses().length === 1);
    await kv.put("machine.m1", JSON.stringify(stranger.sign("kv:machine.m1", 1, { heartbeatSeconds: 10 })));
    await waitFor("the second rejection", () => statuses().length === 2);
    // Signed by the right key, but binding nothing: the old format, replayable anywhere.
    await kv.put("machine.m1", JSON.stringify(signDocument({ heartbeatSeconds: 12 }, trusted.seed)));
    await waitFor("three rejections", () => statuses().filter((status) => status.status === "REJECTED").length === 3);
    expect(statuses().map((status) => status.error)).toEqual([
      expect.stringMatching(/not signed.*EDGE_TRUST_UNSIGNED/),
      expect.stringMatching(/signature does not match.*EDGE_TRUST_BAD_SIGNATURE/),
      expect.stringMatching(/without a valid scope and serial.*EDGE_TRUST_NO_CLAIMS/),
    ]);
    await kv.put("machine.m1", JSON.stringify(trusted.sign("kv:machine.m1", 1, { heartbeatSeconds: 11 })));
    await waitFor("the signed document", () => heartbeatSeconds === 11);
  });

  it("keeps retrying when the first read is denied, and applies the configuration once the permission is granted", async () => {
    // The agent may open the bucket and watch it, but not read a key: its first read fails.
    const users = (agentPermissions: string): string[] => [
      `authorization { users: [ {user: admin, password: admin}, {user: agent, password: agent${agentPermissions}} ] }`,
    ];
    await agentConnection.close();
    await operator.close();
    await server.reload(
      users(`, permissions: { publish: { deny: ["$JS.API.STREAM.MSG.GET.>", "$JS.API.DIRECT.GET.>"] } }`),
    );
    operator = await connect({ servers: server.url, user: "admin", pass: "admin" });
    kv = await new Kvm(operator).open("agent-config");
    await kv.put("machine.m1", JSON.stringify({ heartbeatSeconds: 13 }));
    agentConnection = await connect({
      servers: server.url,
      user: "agent",
      pass: "agent",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });

    remote = await makeRemote(undefined, { baseMs: 100, maxMs: 400 });
    attach();
    await waitFor("the denied read reported", () =>
      commands?.commands.status().problem?.includes("Permissions Violation"),
    );
    expect(heartbeatSeconds).toBe(60);

    await server.reload(users(""));
    await waitFor("the configuration, without a restart", () => heartbeatSeconds === 13);
    await waitFor("the problem cleared", () => commands?.commands.status().problem === null);
    // The status is sent once the components took the configuration: a moment after the change shows.
    await waitFor("APPLIED reported", () => statuses().length > 0);
    expect(statuses()).toEqual([expect.objectContaining({ status: "APPLIED" })]);
  });

  it("keeps the last good revision across a restart with no server, and sets a damaged file aside", async () => {
    remote = await makeRemote();
    attach();
    const { revision } = await configSet(operator, { machineId: "m1" }, "heartbeatSeconds", "4");
    await waitFor("applied", () => heartbeatSeconds === 4);
    await stopRemote();
    expect(JSON.parse(await readFile(join(configDir, LAST_GOOD_FILE), "utf8"))).toMatchObject({ revision });

    heartbeatSeconds = 60;
    const reportedBefore = statuses().length;
    remote = await makeRemote(); // never attached: offline
    expect(heartbeatSeconds).toBe(4);
    expect(remote.current().revision).toBe(revision);
    // Put back in force from disk, but reported APPLIED once only: when it was first applied.
    expect(statuses().slice(reportedBefore)).toEqual([]);
    await stopRemote();

    await writeFile(join(configDir, LAST_GOOD_FILE), "{ damaged");
    heartbeatSeconds = 60;
    remote = await makeRemote();
    expect(heartbeatSeconds).toBe(60);
    expect((await readdir(configDir)).some((name) => name.startsWith(`${LAST_GOOD_FILE}.corrupt-`))).toBe(true);
  });

  it("applies what was pushed while the agent was offline once its link is back", async () => {
    remote = await makeRemote();
    attach();
    await configSet(operator, { machineId: "m1" }, "heartbeatSeconds", "3");
    await waitFor("first", () => heartbeatSeconds === 3);

    await server.stop();
    await server.start();
    // The broker restarted; the agent's link is still reconnecting when the operator pushes.
    const pusher = await connect({ servers: server.url });
    await configSet(pusher, { machineId: "m1" }, "heartbeatSeconds", "8");
    await pusher.close();
    await waitFor("the push made while the agent was away", () => heartbeatSeconds === 8, 30_000);

    // An agent that was not running at all: it starts on its last good revision, then the link
    // brings the one pushed meanwhile.
    await stopRemote();
    const later = await connect({ servers: server.url });
    await configSet(later, { machineId: "m1" }, "heartbeatSeconds", "6");
    await later.close();
    remote = await makeRemote();
    expect(heartbeatSeconds).toBe(8);
    attach();
    await waitFor("the revision pushed while it was stopped", () => heartbeatSeconds === 6);
  });
});
