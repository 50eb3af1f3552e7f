import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, createAgent } from "../../../src/agent/create-agent.ts";
import { COMMAND_STREAMS, supportsMessageTtl, TASK_LIMITS } from "../../../src/contracts/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { loadSettings } from "../../../src/settings/index.ts";
import { signCommand } from "../../../src/trust/index.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner } from "../../helpers/signing.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { chunksOf, joinedOutput, publishTask, type ResultSeen, resultsOf, taskResults } from "../../helpers/tasks.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const MACHINE = "t1";
const TASK = `machine.${MACHINE}.task`;
const CANCEL = `machine.${MACHINE}.task.cancel`;

/** Whether a process runs (a zombie waiting for its parent to reap it has ended). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

interface TasksStatus {
  readonly accepts: string;
  readonly running: Array<{ taskId: string; pid: number | null; since: string | null }>;
  readonly queued: number;
}

describe("remote tasks on an agent (in process, a real nats-server)", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let root: string;
  const agents: Agent[] = [];

  const startAgent = async (
    env: NodeJS.ProcessEnv = {},
    options: { machineId?: string; childEnvironment?: NodeJS.ProcessEnv; waitForFeeds?: boolean } = {},
  ): Promise<Agent> => {
    const machineId = options.machineId ?? MACHINE;
    const { settings } = loadSettings({
      env: {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_MACHINE_ID: machineId,
        EDGE_AGENT_DATA_DIR: join(root, machineId, "data"),
        EDGE_AGENT_CONFIG_DIR: join(root, machineId, "config"),
        EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "1",
        ...env,
      },
      platform: "linux",
      privileged: false,
    });
    const agent = await createAgent(settings, {
      clock: systemClock,
      logger: silentLogger(),
      telemetry: false,
      childEnvironment: options.childEnvironment ?? process.env,
    });
    await agent.start();
    agents.push(agent);
    // Its task feeds take only what comes after their first read.
    if (options.waitForFeeds !== false)
      await waitFor("the first read of its feeds", () => agent.status().commands.lastCheckedAt !== null);
    return agent;
  };
  const stopAgent = async (agent: Agent): Promise<void> => {
    agents.splice(agents.indexOf(agent), 1);
    await agent.stop();
  };
  const tasksStatus = (agent: Agent): TasksStatus => agent.status().capabilities.tasks as TasksStatus;
  const endOf = async (taskId: string, timeoutMs = 20_000): Promise<ResultSeen> =>
    waitFor(`the result of ${taskId}`, async () => (await resultsOf(operator, taskId))[0], timeoutMs);
  const task = (taskId: string, run: unknown, extra: Record<string, unknown> = {}) => ({
    taskId,
    run,
    timeoutSeconds: 60,
    ...extra,
  });
  const sh = (script: string) => ({ script, interpreter: "sh" });

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    root = await mkdtemp(join(tmpdir(), "edge-agent-tasks-"));
  });

  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.stop();
    await operator.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("runs a program, sends its output as numbered chunks, and reports its end once, caused by the task", async () => {
    await startAgent();
    const sent = await publishTask(
      operator,
      TASK,
      task("hello-1", { argv: ["sh", "-c", "echo hello; echo trouble >&2; exit 3"] }),
    );
    const end = await endOf("hello-1");
    expect(end.subject).toBe(`machine.${MACHINE}.task.result`);
    expect(end.causationId).toBe(sent.eventId);
    expect(end.correlationId).toBe(sent.eventId);
    expect(end.result).toMatchObject({
      taskId: "hello-1",
      status: "FAILED",
      exitCode: 3,
      signal: null,
      error: null,
      bytesSeen: { stdout: 6, stderr: 8 },
      truncated: false,
      lastLines: { stdout: ["hello"], stderr: ["trouble"] },
    });
    expect(end.result.startedAt).not.toBeNull();
    const chunks = await chunksOf(operator, "hello-1");
    expect(chunks.map((chunk) => chunk.seq).sort()).toEqual([...Array(end.result.chunks).keys()]);
    expect(joinedOutput(chunks)).toEqual({ stdout: "hello\n", stderr: "trouble\n" });
    // Its own folder is gone once the result is stored.
    await waitFor("the task's folder removed", () => !existsSync(join(root, MACHINE, "data", "tasks", "hello-1")));
  });

  it("gives a script its own folder, the task's variables and its marker, never the agent's own variables", async () => {
    await startAgent(
      {},
      {
        childEnvironment: {
          ...process.env,
          EDGE_AGENT_NATS_PASSWORD: "agent-secret",
          NATS_TOKEN: "agent-token",
          KEPT_FROM_AGENT: "kept",
        },
      },
    );
    const script = [
      'echo "greeting=$GREETING"',
      'echo "kept=$KEPT_FROM_AGENT"',
      'echo "password=${EDGE_AGENT_NATS_PASSWORD:-none} token=${NATS_TOKEN:-none}"',
      'echo "marker=${EDGE_TASK_ID%%:*}"',
      'echo "cwd=$(pwd)"',
    ].join("\n");
    await publishTask(
      operator,
      TASK,
      task("env-1", { script, interpreter: "bash" }, { env: { GREETING: "hi there" } }),
    );
    const end = await endOf("env-1");
    expect(end.result.status).toBe("SUCCEEDED");
    expect(end.result.lastLines.stdout).toEqual([
      "greeting=hi there",
      "kept=kept",
      "password=none token=none",
      "marker=env-1",
      `cwd=${join(root, MACHINE, "data", "tasks", "env-1")}`,
    ]);
  });

  it("refuses an unsigned task without tasks.allowUnsigned, whatever allowUnsigned says, naming the setting", async () => {
    await startAgent({ EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "0", EDGE_AGENT_ALLOW_UNSIGNED: "1" });
    await publishTask(operator, TASK, task("unsigned-1", { argv: ["true"] }));
    const end = await endOf("unsigned-1");
    expect(end.result).toMatchObject({ status: "REJECTED", startedAt: null, exitCode: null });
    expect(end.result.error).toMatch(/tasks\.allowUnsigned \(EDGE_AGENT_TASKS_ALLOW_UNSIGNED/);
    expect(end.result.error).toContain("EDGE_TRUST_NO_KEY");
  });

  it("with a signing key: runs a task signed for its subject, refuses one unsigned, signed elsewhere, or past its signed expiry", async () => {
    const signer = createSigner();
    await startAgent({ EDGE_AGENT_CONFIG_SIGNING_KEY: signer.publicKey });
    const soon = new Date(Date.now() + 3_600_000).toISOString();
    const signed = (body: Record<string, unknown>, scope: string, serial: number, expiresAt = soon) =>
      signCommand(body, { scope, serial, expiresAt }, signer.seed);
    // The signed expiresAt is its expiry: no Nats-TTL needed.
    await publishTask(operator, TASK, signed(task("signed-1", { argv: ["true"] }), TASK, 1), { ttl: null });
    await publishTask(operator, TASK, task("unsigned-2", { argv: ["true"] }));
    await publishTask(operator, TASK, signed(task("elsewhere-1", { argv: ["true"] }), "machine.t2.task", 2));
    const past = new Date(Date.now() - 1_000).toISOString();
    await publishTask(operator, TASK, signed(task("expired-1", { argv: ["true"] }), TASK, 3, past));
    expect((await endOf("signed-1")).result.status).toBe("SUCCEEDED");
    expect((await endOf("unsigned-2")).result).toMatchObject({
      status: "REJECTED",
      error: expect.stringContaining("EDGE_TRUST_UNSIGNED"),
    });
    expect((await endOf("elsewhere-1")).result.error).toContain("EDGE_TRUST_WRONG_SCOPE");
    expect((await endOf("expired-1")).result.error).toContain("EDGE_TRUST_EXPIRED");
  });

  it("refuses what this machine's policy does not allow, naming the setting, and a task without an expiry", async () => {
    const allowed = join(root, "allowed");
    await mkdir(allowed);
    await symlink("/etc", join(allowed, "escape"));
    await startAgent({
      EDGE_AGENT_TASKS_ALLOW_ARGV: "false",
      EDGE_AGENT_TASKS_ALLOWED_INTERPRETERS: "sh",
      EDGE_AGENT_TASKS_ALLOWED_WORKING_DIRS: allowed,
    });
    const refusals: Array<[string, unknown, RegExp, { ttl?: string | null; subject?: string }?]> = [
      ["argv-1", task("argv-1", { argv: ["true"] }), /tasks\.allowArgv is false/],
      ["bash-1", task("bash-1", { script: "true", interpreter: "bash" }), /tasks\.allowedInterpreters: sh/],
      ["cmd-1", task("cmd-1", { script: "dir", interpreter: "cmd" }), /interpreter cmd is not one of this machine's/],
      [
        "wd-1",
        task("wd-1", sh("true"), { workingDir: "/etc" }),
        /not under the data dir .* or a folder of tasks\.allowedWorkingDirs/,
      ],
      [
        "wd-2",
        task("wd-2", sh("true"), { workingDir: join(allowed, "escape") }),
        /\(\/etc\) is not under the data dir/,
      ],
      ["no-ttl-1", task("no-ttl-1", sh("true")), /a task must carry an expiry/, { ttl: null }],
      [
        "late-1",
        task("late-1", sh("true"), { expiresAt: new Date(Date.now() - 1_000).toISOString() }),
        /expired at/,
        { ttl: null },
      ],
      [
        "selector-1",
        task("selector-1", sh("true"), { selector: { tags: { site: "lab" } } }),
        /a selector is for fleet-wide tasks/,
      ],
    ];
    for (const [, body, , options] of refusals) await publishTask(operator, TASK, body, options ?? {});
    for (const [taskId, , reason] of refusals) {
      const end = await endOf(taskId);
      expect(end.result, taskId).toMatchObject({ status: "REJECTED", startedAt: null, chunks: 0 });
      expect(end.result.error, taskId).toMatch(reason);
    }
    // Within an allowed folder, it runs there.
    await publishTask(operator, TASK, task("wd-ok", sh("pwd"), { workingDir: allowed }));
    expect((await endOf("wd-ok")).result).toMatchObject({ status: "SUCCEEDED", lastLines: { stdout: [allowed] } });
  });

  it("refuses every task when tasks are turned off, naming tasks.enabled: each fleet task answered, not only the hour's first", async () => {
    await startAgent({ EDGE_AGENT_TASKS_ENABLED: "false" });
    await publishTask(operator, TASK, task("off-1", sh("true")));
    await publishTask(operator, "machine.all.fleet-task", task("off-fleet-1", sh("true")));
    await publishTask(operator, "machine.all.fleet-task", task("off-fleet-2", sh("true")));
    for (const taskId of ["off-1", "off-fleet-1", "off-fleet-2"])
      expect((await endOf(taskId)).result).toMatchObject({
        status: "REJECTED",
        error: "tasks are turned off on this machine (tasks.enabled is false)",
      });
  });

  it("refuses a huge argv or environment, naming the bound", async () => {
    await startAgent();
    const big = "x".repeat(TASK_LIMITS.maxArgvBytes);
    await publishTask(operator, TASK, task("huge-argv", { argv: ["echo", big] }));
    await publishTask(operator, TASK, task("many-args", { argv: Array(TASK_LIMITS.maxArgs + 1).fill("a") }));
    const env = Object.fromEntries([...Array(TASK_LIMITS.maxEnvEntries + 1).keys()].map((n) => [`V${n}`, "v"]));
    await publishTask(operator, TASK, task("huge-env", { argv: ["true"] }, { env }));
    await publishTask(operator, TASK, task("agent-var", { argv: ["true"] }, { env: { EDGE_TASK_ID: "forged" } }));
    expect((await endOf("huge-argv")).result.error).toMatch(/argv is 65540 bytes, at most 65536/);
    expect((await endOf("many-args")).result.error).toMatch(/at most 256 arguments/);
    expect((await endOf("huge-env")).result.error).toMatch(/65 environment variables, at most 64/);
    expect((await endOf("agent-var")).result.error).toMatch(/names starting EDGE_ are the agent's own/);
    for (const taskId of ["huge-argv", "many-args", "huge-env", "agent-var"])
      expect((await endOf(taskId)).result.status).toBe("REJECTED");
  });

  it("runs a task id once: the same task again is settled silently, another task with its id REJECTED", async () => {
    await startAgent();
    const body = task("once-1", sh("echo ran"));
    const first = await publishTask(operator, TASK, body);
    await endOf("once-1");
    await publishTask(operator, TASK, body);
    const other = await publishTask(operator, TASK, task("once-1", sh("echo something else")));
    await waitFor("the other task's refusal", async () => (await resultsOf(operator, "once-1")).length === 2);
    await publishTask(operator, `machine.${MACHINE}.task`, task("after-1", sh("true")));
    await endOf("after-1");
    const results = await resultsOf(operator, "once-1");
    expect(results.map((seen) => [seen.causationId, seen.result.status])).toEqual([
      [first.eventId, "SUCCEEDED"],
      [other.eventId, "REJECTED"],
    ]);
    expect(results[1]?.result.error).toMatch(/taskId once-1 was used for another task \(taken from TASKS:1\)/);
    expect(joinedOutput(await chunksOf(operator, "once-1")).stdout).toBe("ran\n");
  });

  it("cancels a running task (its whole tree), a queued one, and one not read yet; status shows running and queued", async () => {
    const agent = await startAgent({ EDGE_AGENT_TASKS_MAX_CONCURRENT: "1" });
    await publishTask(operator, `machine.all.fleet-task.cancel`, { taskId: "later-1", reason: "changed my mind" });
    await publishTask(operator, TASK, task("long-1", sh(`echo started; sleep 300 & wait`)));
    await publishTask(operator, TASK, task("queued-1", sh("echo never")));
    await waitFor("the first task's output", async () => (await chunksOf(operator, "long-1")).length > 0);
    const status = await waitFor("the queued task in status", () =>
      tasksStatus(agent).queued === 1 ? tasksStatus(agent) : undefined,
    );
    expect(status.running).toEqual([{ taskId: "long-1", pid: expect.any(Number), since: expect.any(String) }]);
    const pid = status.running[0]?.pid as number;
    await publishTask(operator, CANCEL, { taskId: "queued-1", reason: "not needed" });
    await waitFor("the cancel of the queued task kept", () => tasksStatus(agent).queued === 1);
    await publishTask(operator, CANCEL, { taskId: "long-1", reason: "enough" });
    expect((await endOf("long-1")).result).toMatchObject({
      status: "CANCELLED",
      error: "cancelled: enough",
      signal: "SIGTERM",
    });
    expect(running(pid)).toBe(false);
    expect((await endOf("queued-1")).result).toMatchObject({
      status: "CANCELLED",
      error: "cancelled before it started: not needed",
      startedAt: null,
    });
    await publishTask(operator, TASK, task("later-1", sh("echo never")));
    expect((await endOf("later-1")).result.error).toBe("cancelled before it started: changed my mind");
    expect(await chunksOf(operator, "queued-1")).toEqual([]);
  });

  it("stops a task at its timeout (TIMED_OUT), and one that ignores SIGTERM with SIGKILL after the grace", async () => {
    await startAgent();
    await publishTask(operator, TASK, task("slow-1", sh("sleep 300"), { timeoutSeconds: 1 }));
    await publishTask(
      operator,
      TASK,
      task("stubborn-1", sh("trap '' TERM; echo ready; while :; do sleep 1; done"), { timeoutSeconds: 1 }),
    );
    expect((await endOf("slow-1")).result).toMatchObject({
      status: "TIMED_OUT",
      signal: "SIGTERM",
      error: expect.stringContaining("ran past its timeout of 1 s"),
    });
    expect((await endOf("stubborn-1")).result).toMatchObject({
      status: "TIMED_OUT",
      signal: "SIGKILL",
      lastLines: { stdout: ["ready"] },
    });
  });

  it("stops a daemon the task left behind (it left the process group with setsid) by its marker", async () => {
    await startAgent();
    const pidFile = join(root, "daemon.pid");
    const script = `setsid sh -c 'echo $$ > "$1"; exec sleep 300' daemon "${pidFile}" > /dev/null 2>&1 &\nwhile [ ! -s "${pidFile}" ]; do sleep 0.1; done\necho launched`;
    await publishTask(operator, TASK, task("daemon-1", sh(script)));
    const end = await endOf("daemon-1");
    expect(end.result).toMatchObject({ status: "SUCCEEDED", lastLines: { stdout: ["launched"] } });
    const daemon = Number(readFileSync(pidFile, "utf8"));
    expect(daemon).toBeGreaterThan(0);
    // Stopped before the result was made.
    expect(running(daemon)).toBe(false);
  });

  it("bounds a flood of output: kept and sent up to maxOutputBytes, the rest counted, the result says so", async () => {
    await startAgent();
    const flood = 50 * 1024 * 1024;
    await publishTask(
      operator,
      TASK,
      task("flood-1", sh(`head -c ${flood} /dev/zero | tr '\\0' 'x'; echo; echo the end`), {
        maxOutputBytes: 64 * 1024,
      }),
    );
    const end = await endOf("flood-1", 60_000);
    expect(end.result).toMatchObject({
      status: "SUCCEEDED",
      truncated: true,
      bytesSeen: { stdout: flood + 9, stderr: 0 },
      lastLines: { stdout: [expect.stringMatching(/^x+$/), "the end"] },
    });
    const chunks = await chunksOf(operator, "flood-1");
    expect(chunks).toHaveLength(end.result.chunks);
    expect(joinedOutput(chunks).stdout).toBe("x".repeat(64 * 1024));
  });

  it("confines a task to its working dir (working-dir): a write elsewhere fails, and the task reports it", async () => {
    const outside = join(root, "outside.txt");
    await startAgent({ EDGE_AGENT_TASKS_CONFINE: "working-dir" });
    const script = [
      'echo inside > inside.txt && echo "wrote inside, temp in $(dirname "$(mktemp)")"',
      `echo outside > "${outside}" || { echo "cannot write outside" >&2; exit 7; }`,
    ].join("\n");
    await publishTask(operator, TASK, task("confined-1", sh(script)));
    const end = await endOf("confined-1");
    const cwd = join(root, MACHINE, "data", "tasks", "confined-1");
    expect(end.result).toMatchObject({
      status: "FAILED",
      exitCode: 7,
      lastLines: { stdout: [`wrote inside, temp in ${cwd}`] },
    });
    expect(end.result.lastLines.stderr.join("\n")).toMatch(/Read-only file system[\s\S]*cannot write outside/);
    expect(existsSync(outside)).toBe(false);
  });

  it("hides the agent's own config and data from a confined task, and still runs its script from a working dir elsewhere", async () => {
    const configDir = join(root, MACHINE, "config");
    const dataDir = join(root, MACHINE, "data");
    const allowed = join(root, "work");
    await mkdir(configDir, { recursive: true });
    await mkdir(allowed);
    await writeFile(join(configDir, "machine.creds"), "-----BEGIN NATS USER JWT-----\nsecret\n");
    await startAgent({ EDGE_AGENT_TASKS_CONFINE: "working-dir", EDGE_AGENT_TASKS_ALLOWED_WORKING_DIRS: allowed });
    const script = [
      `if cat "${join(configDir, "machine.creds")}" 2>/dev/null; then echo "read the credentials"; exit 9; fi`,
      `echo "config: $(ls -A "${configDir}" | tr '\\n' ' ')"`,
      `echo "data: $(ls -A "${dataDir}" | tr '\\n' ' ')"`,
      "echo here > here.txt && pwd",
    ].join("\n");
    // The script lives in the task's folder under the (hidden) data dir; the working dir is elsewhere.
    await publishTask(operator, TASK, task("confined-2", sh(script), { workingDir: allowed }));
    const end = await endOf("confined-2");
    expect(end.result).toMatchObject({
      status: "SUCCEEDED",
      lastLines: { stdout: ["config: ", "data: tasks ", allowed] },
    });
    expect(readFileSync(join(allowed, "here.txt"), "utf8")).toBe("here\n");
    // Outside the sandbox nothing was touched.
    expect(readFileSync(join(configDir, "machine.creds"), "utf8")).toContain("secret");
  });

  it("refuses a confined task where no sandbox can be made, naming why, never running it unconfined", async () => {
    await startAgent(
      { EDGE_AGENT_TASKS_CONFINE: "working-dir" },
      { childEnvironment: { ...process.env, PATH: join(root, "no-such-folder") } },
    );
    await publishTask(operator, TASK, task("unconfinable-1", { argv: ["/bin/true"] }));
    expect((await endOf("unconfinable-1")).result).toMatchObject({
      status: "REJECTED",
      error: expect.stringContaining("bubblewrap (bwrap), which is not installed"),
    });
  });

  it("runs the tasks sent while it was offline when it is back, in order; an expired one never runs", async () => {
    const agent = await startAgent({ EDGE_AGENT_TASKS_MAX_CONCURRENT: "1" });
    await stopAgent(agent);
    const stamp = (n: number) => sh(`date +%s%N; echo ${n}`);
    await publishTask(operator, TASK, task("offline-1", stamp(1)));
    const ttlEnds = Date.now() + 1_000;
    await publishTask(operator, TASK, task("offline-2", stamp(2)), { ttl: "1s" });
    // Its expiresAt (signed, or as here unsigned under tasks.allowUnsigned) has passed when it is taken.
    await publishTask(
      operator,
      TASK,
      task("offline-3", stamp(3), { expiresAt: new Date(Date.now() - 1_000).toISOString() }),
    );
    await publishTask(operator, TASK, task("offline-4", stamp(4)));
    await publishTask(operator, `machine.all.fleet-task`, task("offline-fleet", stamp(5)));
    if (supportsMessageTtl(server.version))
      await waitFor("the server removed the task whose Nats-TTL passed", async () => {
        const info = await (await jetstreamManager(operator)).streams.info(COMMAND_STREAMS.tasks);
        return info.state.messages === 3;
      });
    else await waitFor("the Nats-TTL passed", () => Date.now() > ttlEnds);
    await startAgent({ EDGE_AGENT_TASKS_MAX_CONCURRENT: "1" });
    const ends = await Promise.all(["offline-1", "offline-4", "offline-fleet"].map((taskId) => endOf(taskId)));
    expect(ends.map((end) => end.result.status)).toEqual(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
    const startedAt = ends.map((end) => Number(end.result.lastLines.stdout[0]));
    expect(startedAt[0]).toBeLessThan(startedAt[1] as number);
    expect(startedAt[1]).toBeLessThan(startedAt[2] as number);
    expect((await endOf("offline-3")).result).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/expired at/),
    });
    // A Nats-TTL that passed: the server removed it (2.11+), or the agent refused it.
    if (supportsMessageTtl(server.version)) expect(await resultsOf(operator, "offline-2")).toEqual([]);
    else
      expect((await endOf("offline-2")).result).toMatchObject({
        status: "REJECTED",
        error: expect.stringMatching(/^task expired at .* \(Nats-TTL\)/),
      });
  });

  it("stopping the agent stops a running task, reported FAILED, and it is not run again at the next start", async () => {
    const agent = await startAgent();
    await publishTask(operator, TASK, task("cut-1", sh("echo started; sleep 300")));
    await waitFor("the task's output", async () => (await chunksOf(operator, "cut-1")).length > 0);
    const pid = tasksStatus(agent).running[0]?.pid as number;
    await stopAgent(agent);
    expect(running(pid)).toBe(false);
    const restarted = await startAgent();
    expect((await endOf("cut-1")).result).toMatchObject({
      status: "FAILED",
      error: expect.stringContaining("the agent stopped while it ran"),
    });
    await waitFor("nothing pending", () => restarted.status().commands.pending === 0);
    expect(await resultsOf(operator, "cut-1")).toHaveLength(1);
    expect(tasksStatus(restarted).running).toEqual([]);
  });

  it("runs a fleet task where every tag of its selector matches, each machine reporting its own end", async () => {
    await startAgent({ EDGE_AGENT_TAGS: "site=lab,role=db" }, { machineId: "f1" });
    await startAgent({ EDGE_AGENT_TAGS: "site=lab,role=web" }, { machineId: "f2" });
    await publishTask(
      operator,
      "machine.all.fleet-task",
      task("fleet-db", sh("echo db"), { selector: { tags: { role: "db" } } }),
    );
    await publishTask(
      operator,
      "machine.all.fleet-task",
      task("fleet-lab", sh("echo lab"), { selector: { tags: { site: "lab" } } }),
    );
    await publishTask(operator, "machine.all.fleet-task", task("fleet-all", sh("echo all")));
    await waitFor(
      "both machines' ends of fleet-lab",
      async () => (await resultsOf(operator, "fleet-lab")).length === 2,
    );
    await waitFor(
      "both machines' ends of fleet-all",
      async () => (await resultsOf(operator, "fleet-all")).length === 2,
    );
    const db = await resultsOf(operator, "fleet-db");
    expect(db.map((seen) => [seen.subject, seen.result.status])).toEqual([["machine.f1.task.result", "SUCCEEDED"]]);
    expect((await resultsOf(operator, "fleet-lab")).map((seen) => seen.subject).sort()).toEqual([
      "machine.f1.task.result",
      "machine.f2.task.result",
    ]);
    const chunks = await chunksOf(operator, "fleet-all");
    expect(chunks.map((chunk) => chunk.subject).sort()).toEqual(["machine.f1.task.output", "machine.f2.task.output"]);
  });

  it("refuses a copy of an old fleet task that a machine made the server store (its request's reply subject)", async () => {
    await startAgent();
    const original = await publishTask(operator, "machine.all.fleet-task", task("fleet-old", sh("echo once")));
    await endOf("fleet-old");
    // Any machine of one account may ask FLEET_TASKS for any of its messages and name where the answer goes.
    operator.publish(
      `$JS.API.DIRECT.GET.${COMMAND_STREAMS.fleetTasks}`,
      JSON.stringify({ seq: original.streamSequence }),
      {
        reply: "machine.all.fleet-task",
      },
    );
    await waitFor("the copy stored", async () => {
      const info = await (await jetstreamManager(operator)).streams.info(COMMAND_STREAMS.fleetTasks);
      return info.state.messages === 2;
    });
    // Refused as what it is, a copy: it is not a task (no task id of its own), and it runs nothing.
    const refused = await waitFor("the copy refused", async () =>
      (await taskResults(operator)).find((seen) => seen.result.status === "REJECTED"),
    );
    expect(refused.result).toMatchObject({
      taskId: null,
      error: expect.stringContaining("a copy of a server's answer"),
    });
    expect((await resultsOf(operator, "fleet-old")).map((seen) => seen.result.status)).toEqual(["SUCCEEDED"]);
    expect(joinedOutput(await chunksOf(operator, "fleet-old")).stdout).toBe("once\n");
    expect((await taskResults(operator)).length).toBe(2);
  });
});
