import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  AGENT_CONFIG_BUCKET,
  type ConfigStatus,
  machineSubjects,
  PLATFORM_STREAMS,
  type TaskOutputChunk,
  type TaskResult,
  type ToolInstallationStatus,
} from "../../../src/contracts/index.ts";
import { mirroredStreams } from "../../../src/identity/account-layout.ts";
import { agentPermissions } from "../../../src/identity/permissions.ts";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { type AccountLayoutServer, startAccountLayoutServer } from "../../helpers/account-layout-server.ts";
import { type AgentProcess, startAgentProcess } from "../../helpers/agent-process.ts";
import { startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const A = "m-a";
const B = "m-b";

/** Every subject of every stream, with how many messages it holds now. */
async function subjectCounts(connection: NatsConnection, streams: readonly string[]): Promise<Map<string, number>> {
  const manager = await jetstreamManager(connection);
  const counts = new Map<string, number>();
  for (const stream of streams) {
    const info = await manager.streams.info(stream, { subjects_filter: ">" });
    for (const [subject, count] of Object.entries(info.state.subjects ?? {})) counts.set(`${stream} ${subject}`, count);
  }
  return counts;
}

/** What changed between two counts: `stream subject` -> messages gained. */
function gained(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const [key, count] of after) if (count !== (before.get(key) ?? 0)) changes[key] = count - (before.get(key) ?? 0);
  return changes;
}

describe("the account layout: the platform, the device view, the machines", () => {
  let layout: AccountLayoutServer | undefined;
  let files: Awaited<ReturnType<typeof startFileServer>> | undefined;
  const agents: AgentProcess[] = [];
  const connections: NatsConnection[] = [];

  afterEach(async () => {
    for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
    for (const agent of agents.splice(0)) await agent.dispose();
    await files?.close();
    await layout?.dispose();
  });

  it("runs every feature of agents in their own account, unchanged for the platform", async () => {
    layout = await startAccountLayoutServer([A, B]);
    await layout.setUp();
    const admin = await connect(layout.platform);
    connections.push(admin);
    const kv: KV = await new Kvm(admin).open(AGENT_CONFIG_BUCKET);
    files = await startFileServer();
    for (const id of [A, B])
      agents.push(await startAgentProcess({ ...layout.agentEnv(id), EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "1" }));
    const bodies = async <T>(stream: string, subject: string): Promise<T[]> =>
      (await readStream(admin, stream))
        .filter((message) => message.subject === subject)
        .map((message) => message.body as T);

    // Events reach the platform's streams (publish acks come back to the machine as responses).
    for (const id of [A, B])
      await waitFor(
        `${id}'s installed-agent event in PLATFORM`,
        async () => (await bodies("INSTALLED_AGENTS", `machine.${id}.installed-agent`)).length > 0,
        20_000,
      );
    // The platform asks a machine (its rpc is exported by DEVICES, imported by PLATFORM).
    const rpc = async <T>(id: string, endpoint: string): Promise<T> =>
      (await admin.request(`machine.${id}.rpc.${endpoint}`, "", { timeout: 3_000 })).json<T>();
    expect(await rpc<{ machineId: string }>(A, "health")).toMatchObject({ machineId: A });

    // Configuration put in PLATFORM's bucket reaches each machine through its mirror.
    await kv.put("defaults", JSON.stringify({ heartbeatSeconds: 21 }));
    await kv.put(`machine.${B}`, JSON.stringify({ heartbeatSeconds: 9 }));
    const running = async (id: string): Promise<Record<string, unknown>> =>
      (await rpc<{ running: Record<string, unknown> }>(id, "config")).running;
    await waitFor("A's configuration", async () => (await running(A)).heartbeatSeconds === 21);
    await waitFor("B's configuration", async () => (await running(B)).heartbeatSeconds === 9);
    await waitFor("B's config.status in PLATFORM", async () =>
      (await bodies<ConfigStatus>("CONFIG_STATUS", `machine.${B}.config.status`)).some(
        (status) => status.status === "APPLIED",
      ),
    );

    // A tool install published by the platform as it always does, then a fleet-wide update.
    const zip = files.add("probe.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    const tool = (version: string): string =>
      JSON.stringify({
        toolAgentId: "probe",
        version,
        downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: zip.url, sha256: zip.sha256 }],
        installationCommandArgs: ["install", version],
      });
    const js = jetstream(admin);
    await js.publish(`machine.${A}.tool-installation`, tool("1.0.0"));
    const toolState = async (): Promise<ToolInstallationStatus | undefined> =>
      (await bodies<ToolInstallationStatus>("TOOL_STATUS", `machine.${A}.tool-installation.status`)).at(-1);
    await waitFor("A's tool installed", async () => (await toolState())?.state === "INSTALLED", 20_000);
    await js.publish("machine.all.tool.probe.update", tool("2.0.0"));
    await waitFor("A's tool updated", async () => (await toolState())?.version === "2.0.0", 20_000);

    // Tasks: A's own (a catch-up on its TASKS mirror), then the fleet's, read in order by a direct get
    // in the request's body, answered by the FLEET_TASKS mirror through DEVICES' import.
    const taskHeaders = headers();
    taskHeaders.set("Nats-TTL", "1h");
    const ends = async (id: string): Promise<TaskResult[]> =>
      bodies<TaskResult>("TASK_RESULTS", `machine.${id}.task.result`);
    await js.publish(
      `machine.${A}.task`,
      JSON.stringify({ taskId: "own-1", run: { argv: ["echo", "own"] }, timeoutSeconds: 30 }),
      { headers: taskHeaders },
    );
    await waitFor("A's own task", async () => (await ends(A)).some((end) => end.status === "SUCCEEDED"), 20_000);
    for (const taskId of ["fleet-1", "fleet-2"])
      await js.publish(
        "machine.all.fleet-task",
        JSON.stringify({ taskId, run: { argv: ["echo", taskId] }, timeoutSeconds: 30 }),
        { headers: taskHeaders },
      );
    for (const id of [A, B])
      await waitFor(
        `${id}'s fleet tasks`,
        async () => (await ends(id)).filter((end) => end.taskId?.startsWith("fleet-")).length === 2,
        20_000,
      );
    // Taken in order, run side by side (tasks.maxConcurrent): which ends first is the processes' race.
    expect((await ends(B)).map((end) => [end.taskId, end.status]).sort()).toEqual([
      ["fleet-1", "SUCCEEDED"],
      ["fleet-2", "SUCCEEDED"],
    ]);
    expect(
      (await bodies<TaskOutputChunk>("TASK_OUTPUT", `machine.${B}.task.output`)).map((chunk) => chunk.data).sort(),
    ).toEqual(["fleet-1\n", "fleet-2\n"]);
    for (const agent of agents) expect(agent.output()).not.toMatch(/Permissions Violation/);
  }, 90_000);

  it("stores no answer to any request a machine's permissions allow, whatever reply subject it names", async () => {
    layout = await startAccountLayoutServer([A, B]);
    await layout.setUp();
    const admin = await connect(layout.platform);
    const viewer = await connect(layout.viewer);
    connections.push(admin, viewer);
    const { commandSubjects, targets } = await fillEveryCommandSubject(admin);
    await waitFor("the mirrors caught up", async () => {
      const origin = await subjectCounts(admin, mirroredStreams());
      const copy = await subjectCounts(viewer, mirroredStreams());
      return Object.keys(gained(copy, origin)).length === 0 && copy.size > 0;
    });
    // B listens for word of its commands, as a running agent does (a push needs someone listening).
    const b = await layout.connectAs(B);
    connections.push(b);
    for (const subject of commandSubjects.filter((each) => each.startsWith(`machine.${B}.`))) b.subscribe(subject);
    await b.flush();
    const a = await layout.connectAs(A);
    connections.push(a);

    const before = await subjectCounts(admin, PLATFORM_STORES);
    const viewBefore = await subjectCounts(viewer, mirroredStreams());
    const { requests, ownEvents } = await attackWithEveryRight(a, targets);
    expect(requests).toBeGreaterThan(1_000);
    // A's own events are stored (they are events, published by A on its own subjects), nothing else.
    const expected = storedOwnEvents(ownEvents);
    await waitFor("A's own events stored", async () => {
      const changes = gained(before, await subjectCounts(admin, PLATFORM_STORES));
      return Object.entries(expected).every(([key, count]) => changes[key] === count);
    });
    expect(gained(before, await subjectCounts(admin, PLATFORM_STORES))).toEqual(expected);
    expect(gained(viewBefore, await subjectCounts(viewer, mirroredStreams()))).toEqual({});
  }, 120_000);

  it("in one account, the same requests do store answers in streams machines read: why the layout exists", async () => {
    const users = [A, B].map(
      (id) => `{ user: "${id}", password: "secret-${id}", permissions: ${JSON.stringify(agentPermissions(id))} }`,
    );
    const server = await startNatsServer({
      configLines: [`authorization { users: [ { user: admin, password: admin }, ${users.join(", ")} ] }`],
    });
    try {
      const admin = await connect({ servers: server.url, user: "admin", pass: "admin" });
      connections.push(admin);
      await createPlatformStreams(admin);
      await new Kvm(admin).create(AGENT_CONFIG_BUCKET, { history: 10 });
      const { targets } = await fillEveryCommandSubject(admin);
      const a = await connect({ servers: server.url, user: A, pass: `secret-${A}`, inboxPrefix: `_INBOX_${A}` });
      connections.push(a);
      const before = await subjectCounts(admin, PLATFORM_STORES);
      const { ownEvents } = await attackWithEveryRight(a, targets);
      const own = storedOwnEvents(ownEvents);
      await waitFor("answers stored beside A's own events", async () => {
        const changes = gained(before, await subjectCounts(admin, PLATFORM_STORES));
        return Object.keys(changes).some((key) => !(key in own));
      });
      const changes = gained(before, await subjectCounts(admin, PLATFORM_STORES));
      const foreign = Object.keys(changes).filter((key) => !(key in own));
      // Among them: B's commands and configuration, and the fleet's.
      expect(foreign).toEqual(
        expect.arrayContaining([
          `TOOL_INSTALLATION machine.${B}.tool-installation`,
          `KV_agent-config $KV.agent-config.machine.${B}`,
          "CLIENT_UPDATE machine.all.client-update",
          `TASKS machine.${B}.task`,
          // Any of the fleet's tasks, copied onto the fleet's subject: refused as a copy by every machine.
          "FLEET_TASKS machine.all.fleet-task",
        ]),
      );
    } finally {
      await server.dispose();
    }
  }, 120_000);
});

/** Every stream the platform keeps (commands, events, the bucket). */
const PLATFORM_STORES = [...PLATFORM_STREAMS.map((stream) => stream.name), "KV_agent-config"];

/**
 * Something stored on every command subject and key of A, B and the fleet (each read has an answer
 * to copy); returns those subjects and every subject an answer could be stored on.
 */
async function fillEveryCommandSubject(
  admin: NatsConnection,
): Promise<{ commandSubjects: string[]; targets: string[] }> {
  const js = jetstream(admin);
  const commandSubjects = [
    ...new Set(
      PLATFORM_STREAMS.filter((stream) => stream.commands)
        .flatMap((stream) => stream.subjects)
        .flatMap((pattern) => [A, B, "all"].map((id) => pattern.replace("machine.*.", `machine.${id}.`)))
        .map((subject) => subject.replace("machine.all.tool.*.update", "machine.all.tool.probe.update"))
        .filter(
          (subject) => !subject.startsWith("machine.all.tool-") && !subject.startsWith("machine.all.client-uninstall"),
        ),
    ),
  ];
  for (const subject of commandSubjects) await js.publish(subject, JSON.stringify({ old: subject }));
  const kv = await new Kvm(admin).open(AGENT_CONFIG_BUCKET);
  for (const key of ["defaults", `machine.${A}`, `machine.${B}`]) await kv.put(key, JSON.stringify({ key }));
  const eventSuffixes = Object.values(machineSubjects("x"))
    .filter((subject) => subject.startsWith("machine.x."))
    .map((subject) => subject.slice("machine.x.".length));
  const targets = [
    ...new Set([
      ...commandSubjects,
      "$KV.agent-config.defaults",
      `$KV.agent-config.machine.${A}`,
      `$KV.agent-config.machine.${B}`,
      ...[A, B].flatMap((id) => eventSuffixes.map((suffix) => `machine.${id}.${suffix}`)),
    ]),
  ];
  return { commandSubjects, targets };
}

/**
 * Every publish A's permission set allows (wildcards made concrete), once per target as the reply
 * subject: direct gets, the catch-up consumer made to push to the target, a pull from the start
 * answered into the target, the takeover's requests, and A's own events (whose publish ack goes there).
 */
async function attackWithEveryRight(
  a: NatsConnection,
  targets: readonly string[],
): Promise<{ requests: number; ownEvents: Map<string, number> }> {
  const allowed = agentPermissions(A).publish.allow.map((pattern) => pattern.replace("*", "probe"));
  const consumerBody = (subject: string, deliverTo: string | null): string => {
    const [, , , , stream, name, ...filter] = subject.split(".");
    return JSON.stringify({
      stream_name: stream,
      config: {
        name,
        filter_subject: filter.join("."),
        deliver_policy: "all",
        ack_policy: "none",
        ...(deliverTo ? { deliver_subject: deliverTo } : {}),
      },
    });
  };
  const streamOf = (apiSubject: string): string => apiSubject.split(".")[4] as string;
  const ask = (subject: string, body: string): Promise<unknown> =>
    a.request(subject, body, { timeout: 3_000 }).catch(() => undefined);
  let requests = 0;
  const ownEvents = new Map<string, number>();
  for (const target of targets) {
    for (const subject of allowed) {
      const deleteOwn = allowed.find((each) => each.startsWith(`$JS.API.CONSUMER.DELETE.${streamOf(subject)}.`));
      if (subject.includes(".CONSUMER.CREATE.")) {
        if (deleteOwn) await ask(deleteOwn, "");
        a.publish(subject, consumerBody(subject, target), { reply: target });
      } else if (subject.includes(".CONSUMER.MSG.NEXT.")) {
        const create = allowed.find((each) => each.startsWith(`$JS.API.CONSUMER.CREATE.${streamOf(subject)}.`));
        if (deleteOwn) await ask(deleteOwn, "");
        if (create) await ask(create, consumerBody(create, null));
        a.publish(subject, JSON.stringify({ batch: 5, no_wait: true }), { reply: target });
      } else if (/^\$JS\.API\.DIRECT\.GET\.[^.]+$/.test(subject)) {
        // A direct get in the body (the fleet's tasks): asking for a message stored there.
        a.publish(subject, JSON.stringify({ seq: 1 }), { reply: target });
      } else {
        a.publish(subject, "{}", { reply: target });
        if (subject.startsWith(`machine.${A}.`)) ownEvents.set(subject, (ownEvents.get(subject) ?? 0) + 1);
      }
      requests += 1;
    }
    await a.flush();
  }
  return { requests, ownEvents };
}

/** `stream subject` -> count for A's own event publishes, as the streams store them. */
function storedOwnEvents(ownEvents: ReadonlyMap<string, number>): Record<string, number> {
  const expected: Record<string, number> = {};
  for (const [subject, count] of ownEvents) {
    const stream = PLATFORM_STREAMS.find((each) =>
      each.subjects.some((pattern) =>
        new RegExp(`^${pattern.replaceAll(".", "\\.").replaceAll("*", "[^.]+")}$`).test(subject),
      ),
    );
    if (stream) expected[`${stream.name} ${subject}`] = count;
  }
  return expected;
}
