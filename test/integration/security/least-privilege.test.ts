import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { PermissionViolationError } from "@nats-io/nats-core";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  headers,
  type MsgHdrs,
  type NatsConnection,
} from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  type ClientUpdateStatus,
  COMMAND_STREAMS,
  type ConfigStatus,
  catchUpConsumerName,
  legacyMachineConsumers,
  type TaskOutputChunk,
  type TaskResult,
  type ToolInstallationStatus,
} from "../../../src/contracts/index.ts";
import { type NatsServerPermissions, toJwtPermissions } from "../../../src/identity/permissions.ts";
import { isPermissionDenied } from "../../../src/transport/permission-denied.ts";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { mintDecentralizedAuth } from "../../helpers/decentralized-auth.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const A = "m-a";
const B = "m-b";
const MACHINES = [A, B] as const;
/** A stand-in agent binary for the self-update: answers `version`; run, it notes its machine and idles. */
const fakeAgent = (version: string, marker: string): Buffer =>
  Buffer.from(
    `#!/bin/sh\nif [ "$1" = version ]; then echo ${version}; exit 0; fi\necho "$EDGE_AGENT_MACHINE_ID" >> ${marker}\nexec sleep 60\n`,
  );

type AuthMode = "user/password" | "creds (JWT)";

/** How the admin (the platform) and each machine connect; the machines' permissions are given. */
interface Identities {
  readonly server: NatsServerHandle;
  readonly admin: ConnectionOptions;
  agentEnv(machineId: string): Record<string, string>;
  connectAs(machineId: string): Promise<NatsConnection>;
}

async function startServer(
  mode: AuthMode,
  permissionsOf: Readonly<Record<string, NatsServerPermissions>>,
  dir: string,
): Promise<Identities> {
  if (mode === "user/password") {
    const users = [
      "{ user: admin, password: admin }",
      // The --json output goes into the server config as it is.
      ...MACHINES.map(
        (id) => `{ user: "${id}", password: "secret-${id}", permissions: ${JSON.stringify(permissionsOf[id])} }`,
      ),
    ];
    const server = await startNatsServer({ configLines: [`authorization { users: [ ${users.join(", ")} ] }`] });
    return {
      server,
      admin: { servers: server.url, user: "admin", pass: "admin" },
      agentEnv: (id) => ({ EDGE_AGENT_NATS_USER: id, EDGE_AGENT_NATS_PASSWORD: `secret-${id}` }),
      connectAs: (id) => connect({ servers: server.url, user: id, pass: `secret-${id}`, inboxPrefix: `_INBOX_${id}` }),
    };
  }
  const auth = await mintDecentralizedAuth();
  const server = await startNatsServer({ configLines: auth.configLines });
  const creds: Record<string, { file: string; text: string }> = {};
  for (const id of [...MACHINES, "admin"]) {
    const claims = permissionsOf[id] ? toJwtPermissions(permissionsOf[id]) : undefined;
    const text = await auth.userCreds(
      id,
      claims && {
        pub: { allow: [...claims.pub.allow], deny: [...claims.pub.deny] },
        sub: { allow: [...claims.sub.allow], deny: [...claims.sub.deny] },
        resp: { ...claims.resp },
      },
    );
    const file = join(dir, `${id}.creds`);
    await writeFile(file, text, { mode: 0o600 });
    creds[id] = { file, text };
  }
  const authenticator = (id: string) => credsAuthenticator(new TextEncoder().encode(creds[id]?.text ?? ""));
  return {
    server,
    admin: { servers: server.url, authenticator: authenticator("admin") },
    agentEnv: (id) => ({ EDGE_AGENT_NATS_CREDS_FILE: creds[id]?.file ?? "" }),
    connectAs: (id) => connect({ servers: server.url, authenticator: authenticator(id), inboxPrefix: `_INBOX_${id}` }),
  };
}

/** True when the server refused this identity the publish (nats.js fails a request to it at once). */
async function publishDenied(connection: NatsConnection, subject: string, body = ""): Promise<boolean> {
  try {
    await connection.request(subject, body, { timeout: 3_000 });
    return false;
  } catch (error) {
    return isPermissionDenied(error);
  }
}

/**
 * True when the server refused this identity the subscription. The server handles the SUB before the
 * PING of a flush and answers in that order: a refusal (-ERR) has closed the subscription by the PONG.
 */
async function subscribeDenied(connection: NatsConnection, subject: string): Promise<boolean> {
  const subscription = connection.subscribe(subject);
  await connection.flush();
  if (!subscription.isClosed()) {
    subscription.unsubscribe();
    return false;
  }
  return (await subscription.closed) instanceof PermissionViolationError;
}

describe.each<AuthMode>(["user/password", "creds (JWT)"])("least privilege, two machines on one server, %s", (mode) => {
  let dir: string | undefined;
  let identities: Identities | undefined;
  let files: Awaited<ReturnType<typeof startFileServer>> | undefined;
  const agents: AgentProcess[] = [];
  const connections: NatsConnection[] = [];

  afterEach(async () => {
    for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
    for (const agent of agents.splice(0)) await agent.dispose();
    await files?.close();
    await identities?.server.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs every feature under exactly `edge-agent permissions`, and A can do nothing as, or to, B", async () => {
    dir = await mkdtemp(join(tmpdir(), "edge-least-privilege-"));
    // Exactly what the command prints, as outside checks take it.
    const permissionsOf: Record<string, NatsServerPermissions> = {};
    for (const id of MACHINES) {
      const printed = await runCli(["permissions", id, "--json"], {});
      expect(printed.code, printed.stderr).toBe(0);
      permissionsOf[id] = JSON.parse(printed.stdout) as NatsServerPermissions;
    }
    identities = await startServer(mode, permissionsOf, dir);
    const ids = identities;
    const admin = await connect(ids.admin);
    connections.push(admin);
    // The platform makes the streams and the bucket; agents never need to.
    await createPlatformStreams(admin);
    const kv: KV = await new Kvm(admin).create("agent-config", { history: 10 });
    files = await startFileServer();
    for (const id of MACHINES) {
      agents.push(
        await startAgentProcess({
          EDGE_AGENT_NATS_URL: ids.server.url,
          EDGE_AGENT_MACHINE_ID: id,
          EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "1",
          ...ids.agentEnv(id),
        }),
      );
    }
    const js = jetstream(admin);
    const bodies = async <T>(stream: string, subject: string): Promise<T[]> =>
      (await readStream(admin, stream))
        .filter((message) => message.subject === subject)
        .map((message) => message.body as T);
    const rpc = async <T>(id: string, endpoint: string): Promise<T> =>
      (await admin.request(`machine.${id}.rpc.${endpoint}`, "", { timeout: 3_000 })).json<T>();
    const running = async (id: string): Promise<Record<string, unknown>> =>
      (await rpc<{ running: Record<string, unknown> }>(id, "config")).running;

    // --- Every feature works under the set. ---
    // Events through the outbox (JetStream publish acks come back on the machine's own inbox prefix).
    for (const id of MACHINES)
      await waitFor(
        `${id}'s installed-agent event`,
        async () => (await bodies("INSTALLED_AGENTS", `machine.${id}.installed-agent`)).length > 0,
        20_000,
      );
    // Request/reply: the reply goes to the platform's inbox, which the machine may answer and not read.
    for (const id of MACHINES)
      expect(await rpc<{ status: string; machineId: string }>(id, "health")).toMatchObject({
        status: "ok",
        machineId: id,
      });
    // The publish acks came back (on the machine's own inbox prefix): the outbox counts them delivered.
    for (const id of MACHINES) {
      await waitFor(
        `${id}'s outbox acked`,
        async () =>
          (await rpc<{ outbox: { deliveredCount: number; pendingCount: number } }>(id, "status")).outbox
            .deliveredCount > 0,
      );
    }

    // Remote configuration: both keys, read by direct get (a put is heard of on the key's subject).
    await kv.put("defaults", JSON.stringify({ tags: { fleet: "blue" } }));
    await kv.put(`machine.${A}`, JSON.stringify({ heartbeatSeconds: 7 }));
    await kv.put(`machine.${B}`, JSON.stringify({ heartbeatSeconds: 9 }));
    await waitFor(
      "A's configuration",
      async () =>
        (await running(A)).heartbeatSeconds === 7 &&
        ((await running(A)).tags as Record<string, string>).fleet === "blue",
    );
    await waitFor(
      "B's configuration",
      async () =>
        (await running(B)).heartbeatSeconds === 9 &&
        ((await running(B)).tags as Record<string, string>).fleet === "blue",
    );

    // Tool install (per machine), then one fleet-wide update for every machine that has the tool.
    const zip = files.add("probe.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    const tool = (version: string): Record<string, unknown> => ({
      toolAgentId: "probe",
      version,
      downloadConfigurations: [
        { os: "linux", agentFileName: "bin/tool.sh", link: zip.url, sha256: zip.sha256, size: zip.size },
      ],
      installationCommandArgs: ["install", version],
    });
    const toolState = async (id: string): Promise<ToolInstallationStatus | undefined> =>
      (await bodies<ToolInstallationStatus>("TOOL_STATUS", `machine.${id}.tool-installation.status`)).at(-1);
    for (const id of MACHINES) await js.publish(`machine.${id}.tool-installation`, JSON.stringify(tool("1.0.0")));
    for (const id of MACHINES)
      await waitFor(`${id}: tool installed`, async () => (await toolState(id))?.state === "INSTALLED", 20_000);
    await js.publish("machine.all.tool.probe.update", JSON.stringify(tool("2.0.0")));
    for (const id of MACHINES)
      await waitFor(
        `${id}: tool updated`,
        async () => (await toolState(id))?.version === "2.0.0" && (await toolState(id))?.state === "INSTALLED",
        20_000,
      );

    // Config push (a configuration document as a file), on the machine's own subject.
    const document = files.add("agent.json", Buffer.from(JSON.stringify({ revision: 1, heartbeatSeconds: 11 })));
    await js.publish(
      `machine.${A}.download-configuration`,
      JSON.stringify([
        { os: "linux", fileName: "agent.json", link: document.url, sha256: document.sha256, size: document.size },
      ]),
    );
    await waitFor("A's pushed configuration", async () => (await running(A)).heartbeatSeconds === 11);

    // Self-update commands reach the machine (a downgrade is refused and reported).
    await js.publish(`machine.${A}.client-update`, JSON.stringify({ version: "0.0.1", downloadConfigurations: [] }));
    await waitFor("A's update refusal", async () =>
      (await bodies<ClientUpdateStatus>("CLIENT_UPDATE_STATUS", `machine.${A}.client-update.status`)).some(
        (status) => status.state === "REJECTED",
      ),
    );

    // Remote tasks: A's own (a queue feed: a catch-up on TASKS), then the fleet's (read in order by a
    // direct get in the request's body): output chunks and results published on their own subjects.
    const taskHeaders = (): MsgHdrs => {
      const ttl = headers();
      ttl.set("Nats-TTL", "1h");
      return ttl;
    };
    const results = async (id: string): Promise<TaskResult[]> =>
      bodies<TaskResult>("TASK_RESULTS", `machine.${id}.task.result`);
    await js.publish(
      `machine.${A}.task`,
      JSON.stringify({ taskId: "own-1", run: { script: "echo own", interpreter: "sh" }, timeoutSeconds: 30 }),
      { headers: taskHeaders() },
    );
    await js.publish(
      "machine.all.fleet-task",
      JSON.stringify({ taskId: "fleet-1", run: { argv: ["echo", "fleet"] }, timeoutSeconds: 30 }),
      { headers: taskHeaders() },
    );
    await waitFor("A's own task", async () => (await results(A)).some((end) => end.taskId === "own-1"));
    for (const id of MACHINES)
      await waitFor(`${id}'s fleet task`, async () => (await results(id)).some((end) => end.taskId === "fleet-1"));
    for (const id of MACHINES)
      expect((await results(id)).map((end) => end.status)).toEqual(
        id === A ? ["SUCCEEDED", "SUCCEEDED"] : ["SUCCEEDED"],
      );
    expect(
      (await bodies<TaskOutputChunk>("TASK_OUTPUT", `machine.${B}.task.output`)).map((chunk) => chunk.data),
    ).toEqual(["fleet\n"]);

    // No consumer is kept on the server for any machine: catch-ups remove theirs when done.
    const manager = await jetstreamManager(admin);
    const consumersLeft = async (): Promise<string[]> => {
      const names: string[] = [];
      for (const stream of [...Object.values(COMMAND_STREAMS), "KV_agent-config"])
        for await (const consumer of manager.consumers.list(stream)) names.push(`${stream}/${consumer.name}`);
      return names;
    };
    expect(await consumersLeft()).toEqual([]);

    // --- A can do nothing as, or to, B. ---
    const a = await ids.connectAs(A);
    connections.push(a);
    const bReader = catchUpConsumerName(B);
    const aReader = catchUpConsumerName(A);
    const bLegacy = legacyMachineConsumers(B)[0]?.name ?? "";
    const deniedPublishes = [
      // B's events, B's commands, fleet-wide commands.
      `machine.${B}.telemetry`,
      `machine.${B}.tool-installation.status`,
      `machine.${B}.tool-installation`,
      `machine.${B}.rpc.health`,
      "machine.all.client-update",
      "machine.all.tool.probe.update",
      "machine.all.download-configuration",
      // B's key: read in either direct-get form, or the stream's message get; written.
      `$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.machine.${B}`,
      "$JS.API.DIRECT.GET.KV_agent-config",
      "$JS.API.STREAM.MSG.GET.KV_agent-config",
      `$KV.agent-config.machine.${B}`,
      `$KV.agent-config.machine.${A}`,
      // B's commands: its newest message, its catch-up consumer (info, create in every form, delete,
      // pull, ack), its earlier version's consumers; and listing anyone's.
      `$JS.API.DIRECT.GET.TOOL_INSTALLATION.machine.${B}.tool-installation`,
      "$JS.API.DIRECT.GET.TOOL_INSTALLATION",
      `$JS.API.CONSUMER.INFO.TOOL_INSTALLATION.${bReader}`,
      `$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.${bReader}.machine.${B}.tool-installation`,
      `$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.${bReader}`,
      `$JS.API.CONSUMER.DURABLE.CREATE.TOOL_INSTALLATION.${bReader}`,
      "$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION",
      `$JS.API.CONSUMER.DELETE.TOOL_INSTALLATION.${bReader}`,
      `$JS.API.CONSUMER.MSG.NEXT.TOOL_INSTALLATION.${bReader}`,
      `$JS.ACK.TOOL_INSTALLATION.${bReader}.1.1.1.0.0`,
      `$JS.API.CONSUMER.INFO.TOOL_INSTALLATION.${bLegacy}`,
      `$JS.API.CONSUMER.DELETE.TOOL_INSTALLATION.${bLegacy}`,
      "$JS.API.CONSUMER.LIST.TOOL_INSTALLATION",
      // Its own consumer name with B's filter, or on a fleet-wide subject (an old fleet-wide message
      // could then be read, and copied); a watcher on B's key; its own name in the unpinned forms.
      `$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.${aReader}.machine.${B}.tool-installation`,
      `$JS.API.CONSUMER.CREATE.CLIENT_UPDATE.${aReader}.machine.all.client-update`,
      `$JS.API.CONSUMER.CREATE.TOOL_UPDATE.${aReader}.machine.all.tool.probe.update`,
      `$JS.API.CONSUMER.CREATE.KV_agent-config.${aReader}.$KV.agent-config.defaults`,
      `$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.${aReader}`,
      `$JS.API.CONSUMER.DURABLE.CREATE.TOOL_INSTALLATION.${aReader}`,
      `$JS.API.CONSUMER.CREATE.KV_agent-config.KV_WATCHER_x.$KV.agent-config.machine.${B}`,
      // B's tasks and their ends; a task or a cancel of its own or the fleet's; B's tasks read in any
      // form; any task stream read by body but the fleet's; a consumer on the fleet's tasks.
      `machine.${B}.task`,
      `machine.${A}.task`,
      `machine.${A}.task.cancel`,
      "machine.all.fleet-task",
      "machine.all.fleet-task.cancel",
      `machine.${B}.task.result`,
      `machine.${B}.task.output`,
      `$JS.API.DIRECT.GET.TASKS.machine.${B}.task`,
      "$JS.API.DIRECT.GET.TASKS",
      `$JS.API.CONSUMER.CREATE.TASKS.${aReader}.machine.${B}.task`,
      `$JS.API.CONSUMER.CREATE.TASKS.${bReader}.machine.${B}.task.cancel`,
      `$JS.API.CONSUMER.CREATE.FLEET_TASKS.${aReader}.machine.all.fleet-task`,
      // Streams are the platform's.
      "$JS.API.STREAM.CREATE.TOOL_INSTALLATION",
      "$JS.API.STREAM.DELETE.TOOL_INSTALLATION",
    ];
    for (const subject of deniedPublishes)
      expect(
        await publishDenied(a, subject, JSON.stringify({ last_by_subj: `$KV.agent-config.machine.${B}` })),
        `publish ${subject}`,
      ).toBe(true);
    const deniedSubscriptions = [
      `machine.${B}.tool-installation`,
      `machine.${B}.task`,
      `machine.${B}.task.result`,
      `machine.${B}.rpc.health`,
      "machine.*.rpc.health",
      "_INBOX.>",
      `_INBOX_${B}.>`,
      `$KV.agent-config.machine.${B}`,
      "$KV.>",
      "$JS.ACK.>",
      "machine.>",
    ];
    for (const subject of deniedSubscriptions)
      expect(await subscribeDenied(a, subject), `subscribe ${subject}`).toBe(true);
    // Its own inbox it may read: the check above tells a refusal from a subscription that stands.
    expect(await subscribeDenied(a, `_INBOX_${A}.probe`)).toBe(false);
    // With the filter pinned in the subject, a body naming B's subject is refused by the server.
    const mismatched = await a.request(
      `$JS.API.CONSUMER.CREATE.TOOL_INSTALLATION.${aReader}.machine.${A}.tool-installation`,
      JSON.stringify({
        stream_name: "TOOL_INSTALLATION",
        config: {
          name: aReader,
          filter_subject: `machine.${B}.tool-installation`,
          ack_policy: AckPolicy.Explicit,
        },
      }),
      { timeout: 3_000 },
    );
    expect(mismatched.json<{ error?: { err_code: number } }>().error?.err_code).toBe(10131);
    // The client libraries' own ways fail the same way.
    await expect((await new Kvm(a).open("agent-config")).watch({ key: `machine.${B}` })).rejects.toSatisfy(
      isPermissionDenied,
    );
    // What A may do still works for A: its own key, by the subject form.
    const own = await (await jetstreamManager(a, { checkAPI: false })).direct.getMessage("KV_agent-config", {
      last_by_subj: `$KV.agent-config.machine.${A}`,
    });
    expect(own?.json<{ heartbeatSeconds: number }>().heartbeatSeconds).toBe(7);

    // nats-server does not check reply subjects: in one account, A can make the server answer into
    // B's key. B refuses such revisions (a copy of A's own key, a publish ack) and keeps its
    // configuration. (The account layout keeps such answers out of every stream: accounts test.)
    const refusalsOfB = async (): Promise<Array<string | null | undefined>> =>
      (await bodies<ConfigStatus>("CONFIG_STATUS", `machine.${B}.config.status`))
        .filter((status) => status.status === "REJECTED")
        .map((status) => status.error);
    a.publish(`$JS.API.DIRECT.GET.KV_agent-config.$KV.agent-config.machine.${A}`, "", {
      reply: `$KV.agent-config.machine.${B}`,
    });
    await a.flush();
    // One at a time: the key is a `latest` feed, and a newer revision would supersede this one unread.
    await waitFor("B's first refusal", async () => (await refusalsOfB()).length === 1);
    a.publish(`machine.${A}.telemetry`, "{}", { reply: `$KV.agent-config.machine.${B}` });
    await a.flush();
    await waitFor("B's second refusal", async () => (await refusalsOfB()).length === 2);
    expect(await refusalsOfB()).toEqual([
      expect.stringMatching(/is a copy of a server's answer/),
      expect.stringMatching(/is a NATS server's answer/),
    ]);
    expect(await running(B)).toMatchObject({ heartbeatSeconds: 9 });
    // The fleet's tasks are the one fleet-wide stream a machine may read any message of (in order,
    // by a direct get in the body): A can have the server store a copy of an old one on the fleet's
    // subject. B refuses it as a copy (without a task id: it is no task), and runs nothing again.
    a.publish(`$JS.API.DIRECT.GET.${COMMAND_STREAMS.fleetTasks}`, JSON.stringify({ seq: 1 }), {
      reply: "machine.all.fleet-task",
    });
    await a.flush();
    await waitFor("B's refusal of the copied fleet task", async () =>
      (await results(B)).some((end) => end.status === "REJECTED" && end.taskId === null),
    );
    expect((await results(B)).filter((end) => end.taskId === "fleet-1").map((end) => end.status)).toEqual([
      "SUCCEEDED",
    ]);

    // The agents themselves never hit a permission they lack.
    for (const agent of agents) expect(agent.output()).not.toMatch(/Permissions Violation/);

    // Self-update, fleet-wide: both machines take it (the newest on the fleet's subject) and start the new version.
    const marker = join(dir, "trials");
    const binary = files.add("agent-9.2.0", fakeAgent("9.2.0", marker));
    await js.publish(
      "machine.all.client-update",
      JSON.stringify({
        version: "9.2.0",
        downloadConfigurations: [{ os: "linux", link: binary.url, sha256: binary.sha256 }],
      }),
    );
    await waitFor(
      "the new version running on both machines",
      () =>
        existsSync(marker) &&
        readFileSync(marker, "utf8").split("\n").filter(Boolean).sort().join() === [...MACHINES].sort().join(),
      30_000,
    );
    for (const agent of agents) expect(agent.output()).not.toMatch(/Permissions Violation/);
    expect(await consumersLeft()).toEqual([]);
  }, 90_000);
});
