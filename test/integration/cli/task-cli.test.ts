import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { machineSubjects, supportsMessageTtl } from "../../../src/contracts/index.ts";
import { judgeCommand } from "../../../src/trust/index.ts";
import { FakeTaskMachine } from "../../fixtures/tasks/fake-task-agent.ts";
import { runCli } from "../../helpers/agent-process.ts";
import { publishRawHeaders } from "../../helpers/nats-raw-publish.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const CLI = resolve(import.meta.dirname, "../../../src/cli/main.ts");

interface RunningCli {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | null>;
}

/** `edge-agent <args>` as a child whose output the test reads while it runs. */
function startCli(args: readonly string[], env: Record<string, string>): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

describe("edge-agent task: the operator's side, against a real nats-server", () => {
  let server: NatsServerHandle;
  let connection: NatsConnection;
  let env: Record<string, string>;
  let scratch: string;
  const machines: FakeTaskMachine[] = [];
  const clis: RunningCli[] = [];

  const machine = async (id: string, tags: Record<string, string> = {}): Promise<FakeTaskMachine> => {
    const fake = new FakeTaskMachine(connection, id, tags);
    await fake.start();
    machines.push(fake);
    return fake;
  };
  const cli = (args: readonly string[]): RunningCli => {
    const running = startCli(args, env);
    clis.push(running);
    return running;
  };
  /** The task id `task run` announced on stderr. */
  const announcedTaskId = (running: RunningCli): Promise<string> =>
    waitFor("the task sent", () => /^task (\S+) sent to /m.exec(running.stderr())?.[1]);

  beforeAll(async () => {
    server = await startNatsServer();
    env = { EDGE_AGENT_NATS_URL: server.url };
    const setup = await runCli(["dev-setup"], env);
    expect(setup.code, setup.stderr).toBe(0);
    connection = await connect({ servers: server.url });
    scratch = mkdtempSync(join(tmpdir(), "edge-agent-task-cli-"));
  });
  afterEach(async () => {
    for (const running of clis.splice(0)) if (running.child.exitCode === null) running.child.kill("SIGKILL");
    await Promise.all(machines.splice(0).map((fake) => fake.stop()));
  });
  afterAll(async () => {
    await connection?.close();
    await server?.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  it("dev-setup made the task streams: TASK_OUTPUT keeps a week of output, TASK_RESULTS and the task commands keep theirs", async () => {
    const manager = await jetstreamManager(connection);
    const week = 7 * 24 * 3_600 * 1_000_000_000;
    expect((await manager.streams.info("TASK_OUTPUT")).config).toMatchObject({
      subjects: ["machine.*.task.output"],
      max_age: week,
    });
    for (const stream of ["TASK_RESULTS", "TASKS", "FLEET_TASKS"])
      expect((await manager.streams.info(stream)).config.max_age).toBe(0);
    expect((await manager.streams.info("TASKS")).config).toMatchObject({
      allow_direct: true,
      ...(supportsMessageTtl(server.version) ? { allow_msg_ttl: true } : {}),
    });
  });

  it("one machine: sends the signed task with its TTL, prints its output live (stdout and stderr apart), then its end, and exits with its exit code", async () => {
    const m1 = await machine("ops-m1");
    const signer = createUser();
    const seedFile = join(scratch, "ops.seed");
    writeFileSync(seedFile, new TextDecoder().decode(signer.getSeed()));
    const running = cli([
      "task",
      "run",
      "--machine",
      "ops-m1",
      "--timeout",
      "30",
      "--ttl",
      "10m",
      "--env",
      "GREETING=hello world",
      "--signing-seed-file",
      seedFile,
      "--",
      "sh",
      "-c",
      "echo one; echo two >&2; exit 3",
    ]);
    const task = await m1.received(1);
    const taskId = await announcedTaskId(running);
    expect(task.body).toMatchObject({
      taskId,
      run: { argv: ["sh", "-c", "echo one; echo two >&2; exit 3"] },
      env: { GREETING: "hello world" },
      timeoutSeconds: 30,
    });
    expect(task.body.requestedBy).toMatch(/.@./);
    expect(task.subject).toBe("machine.ops-m1.task");
    expect(task.headers["Nats-TTL"]).toBe("600s");
    expect(task.headers["Nats-Msg-Id"]).toBe(task.headers["X-Event-ID"]);
    // Signed as the agent checks it: scope = the subject, a serial, an expiry 10 minutes on.
    const now = Date.now();
    expect(() =>
      judgeCommand(task.document, { scope: task.subject, ref: "TASKS:1" }, signer.getPublicKey(), undefined, now),
    ).not.toThrow();
    const expiresAt = Date.parse(String(task.document.expiresAt));
    expect(expiresAt).toBeGreaterThan(now + 9 * 60_000);
    expect(expiresAt).toBeLessThanOrEqual(now + 10 * 60_000);

    // Live: each chunk is shown before the next is even sent.
    await m1.chunk(taskId, 0, "stdout", "one\n");
    await waitFor("the first chunk shown", () => running.stdout() === "one\n");
    await m1.chunk(taskId, 1, "stderr", "two\n");
    await waitFor("the second chunk shown", () => running.stderr().includes("two\n"));
    await m1.result(taskId, { status: "FAILED", exitCode: 3, chunks: 2, bytesSeen: { stdout: 4, stderr: 4 } });
    expect(await running.exited).toBe(3);
    expect(running.stdout()).toBe("one\n");
    expect(running.stderr()).toMatch(/\ntwo\nops-m1: FAILED \(exit 3\) in 1\.2 s\n$/);
  });

  it("a gap in the chunks is said where it is; a late chunk comes marked as such; a REJECTED end exits 1 with its reason", async () => {
    const m2 = await machine("ops-m2");
    const running = cli(["task", "run", "--machine", "ops-m2", "--", "seq", "5"]);
    await m2.received(1);
    const taskId = await announcedTaskId(running);
    await m2.chunk(taskId, 0, "stdout", "1\n");
    await m2.chunk(taskId, 2, "stdout", "3\n");
    // Held for a moment (a retried publish may still bring chunk 1), then shown as a gap.
    await waitFor("the gap shown", () => running.stderr().includes("-- output chunk 1 missing"));
    expect(running.stdout()).toBe("1\n3\n");
    await m2.chunk(taskId, 1, "stdout", "2\n");
    await waitFor("the late chunk", () => running.stderr().includes("-- output chunk 1, late: --"));
    await m2.result(taskId, { status: "REJECTED", error: "tasks.enabled is false on this machine", chunks: 4 });
    expect(await running.exited).toBe(1);
    expect(running.stdout()).toBe("1\n3\n2\n");
    expect(running.stderr()).toMatch(
      /ops-m2: REJECTED in 1\.2 s, 1 output chunk never came: tasks\.enabled is false on this machine\n$/,
    );
  });

  it("no end within --wait: exit 124, saying the task may still run; --no-follow prints the id and returns", async () => {
    const m3 = await machine("ops-m3");
    const silent = cli(["task", "run", "--machine", "ops-m3", "--wait", "2s", "--", "sleep", "60"]);
    await m3.received(1);
    expect(await silent.exited).toBe(124);
    expect(silent.stderr()).toMatch(
      /task \S+: no machine answered; stopped following after .*task list shows its ends later/,
    );

    const detached = await runCli(
      ["task", "run", "--machine", "ops-m3", "--no-follow", "--task-id", "t-detached", "--", "true"],
      env,
    );
    expect(detached.code, detached.stderr).toBe(0);
    expect(detached.stdout).toBe("t-detached\n");
    expect((await m3.received(2)).body.taskId).toBe("t-detached");
  });

  it("a fleet task by tags: only matching machines take it, lines prefixed per machine, a summary on Ctrl-C, exit 1 when not all SUCCEEDED", async () => {
    const [a, b, c] = [
      await machine("lab-a", { site: "lab", role: "db" }),
      await machine("lab-b", { site: "lab", role: "db" }),
      await machine("lab-c", { site: "lab", role: "db" }),
    ];
    const other = await machine("office-d", { site: "office", role: "db" });
    const running = cli(["task", "run", "--tag", "site=lab", "--tag", "role=db", "--", "hostname"]);
    const taskId = await announcedTaskId(running);
    for (const fake of [a, b, c])
      expect((await fake.received(1)).body.selector).toEqual({ tags: { site: "lab", role: "db" } });
    expect(a.tasks[0]?.subject).toBe("machine.all.fleet-task");
    await a.chunk(taskId, 0, "stdout", "lab-a.example\npart");
    await a.chunk(taskId, 1, "stdout", "ial\n");
    await a.result(taskId, { status: "SUCCEEDED", chunks: 2 });
    await b.chunk(taskId, 0, "stderr", "hostname: not found\n");
    await b.result(taskId, { status: "FAILED", exitCode: 127, chunks: 1 });
    await c.chunk(taskId, 0, "stdout", "lab-c.example\n");
    await waitFor(
      "every end and output shown",
      () =>
        running.stderr().includes("[lab-b] FAILED (exit 127)") && running.stdout().includes("[lab-c] lab-c.example"),
    );
    running.child.kill("SIGINT");
    expect(await running.exited).toBe(1);
    expect(other.tasks).toEqual([]);
    expect(running.stdout()).toBe("[lab-a] lab-a.example\n[lab-a] partial\n[lab-c] lab-c.example\n");
    expect(running.stderr()).toContain("[lab-b] hostname: not found\n");
    expect(running.stderr()).toContain("[lab-a] SUCCEEDED (exit 0) in 1.2 s\n");
    expect(running.stderr()).toMatch(
      new RegExp(
        `task ${taskId}: 3 machines: 1 SUCCEEDED, 1 FAILED; silent \\(output but no end yet\\): lab-c; stopped following`,
      ),
    );
  });

  it("--json: one object a line, the fleet's exit 0 when every end SUCCEEDED", async () => {
    const x = await machine("json-x", { site: "json" });
    const running = cli(["task", "run", "--tag", "site=json", "--json", "--", "true"]);
    const sent = await waitFor("the sent line", () => {
      const first = running.stdout().split("\n")[0];
      return first ? (JSON.parse(first) as { type: string; taskId: string; stream: string }) : undefined;
    });
    expect(sent).toMatchObject({ type: "sent", stream: "FLEET_TASKS", signed: false });
    await x.received(1);
    await x.chunk(sent.taskId, 0, "stdout", "ok\n");
    await x.result(sent.taskId, { status: "SUCCEEDED", chunks: 1 });
    await waitFor("the result line", () => running.stdout().includes('"type":"result"'));
    running.child.kill("SIGINT");
    expect(await running.exited).toBe(0);
    const lines = running
      .stdout()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.type)).toEqual(["sent", "output", "result", "summary"]);
    expect(lines[1]).toMatchObject({ machineId: "json-x", seq: 0, stream: "stdout", data: "ok\n", late: false });
    expect(lines[2]).toMatchObject({ machineId: "json-x", status: "SUCCEEDED", exitCode: 0, missingChunks: 0 });
    expect(lines[3]).toMatchObject({ machines: 1, ends: { SUCCEEDED: 1 }, silent: [], followEnd: "interrupted" });
  });

  it("cancel and list: the cancel lands on the machine's cancel subject; list shows each task with its end", async () => {
    const m5 = await machine("ops-m5");
    const running = cli(["task", "run", "--machine", "ops-m5", "--task-id", "t-cancel-me", "--", "sleep", "600"]);
    await m5.received(1);
    const cancel = await runCli(
      ["task", "cancel", "t-cancel-me", "--machine", "ops-m5", "--reason", "wrong host"],
      env,
    );
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toMatch(/^cancel of task t-cancel-me sent to machine ops-m5 \(TASKS #\d+, unsigned\)/);
    await waitFor("the cancel received", () => m5.cancels.length === 1);
    expect(m5.cancels[0]).toEqual({ taskId: "t-cancel-me", reason: "wrong host" });
    await m5.result("t-cancel-me", { status: "CANCELLED", signal: "SIGTERM", error: "cancelled: wrong host" });
    expect(await running.exited).toBe(1);
    // A task end whose headers the NATS client refuses to decode (a name with a space, sent over the
    // raw protocol): skipped as unattributable, where it used to end `task list` with a throw.
    await publishRawHeaders(
      server.port,
      machineSubjects("ops-m5").taskResult,
      "NATS/1.0\r\nX-Machine-ID: ops-m5\r\nBad Name: x\r\n\r\n",
      JSON.stringify({ taskId: "t-cancel-me", status: "SUCCEEDED" }),
    );

    const listed = await runCli(["task", "list", "--machine", "ops-m5"], env);
    expect(listed.code, listed.stderr).toBe(0);
    const [header, row] = listed.stdout.trim().split("\n");
    expect(header).toMatch(/^SENT \(UTC\)\s+TASK\s+TARGET\s+RUN\s+END$/);
    expect(row).toMatch(
      /t-cancel-me\s+ops-m5\s+sleep 600\s+CANCELLED \(signal SIGTERM\) in 1\.2 s: cancelled: wrong host \(cancel sent\)$/,
    );

    const json = await runCli(["task", "list", "--json", "--since", "1h"], env);
    expect(json.code, json.stderr).toBe(0);
    const tasks = json.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { taskId: string; machineId: string | null; ends: Array<{ status: string }> });
    expect(tasks.find((task) => task.taskId === "t-cancel-me")).toMatchObject({
      machineId: "ops-m5",
      cancelRequested: true,
      ends: [{ machineId: "ops-m5", status: "CANCELLED" }],
    });
    // The fleet task of the test above, with both of its ends.
    const fleet = tasks.find((task) => task.machineId === null && task.ends.length === 2);
    expect(fleet?.ends.map((end) => end.status).sort()).toEqual(["FAILED", "SUCCEEDED"]);
  });

  it("bad usage is refused before anything is sent (exit 2); a server without the task streams names dev-setup (exit 1)", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["task", "run", "--", "true"], /say which machines: --machine ID, --tag k=v/],
      [["task", "run", "--machine", "m", "--all", "--", "true"], /exclude each other/],
      [["task", "run", "--machine", "m", "uptime"], /the program and its arguments go after --/],
      [["task", "run", "--machine", "m", "--timeout", "ten", "--", "true"], /--timeout "ten" is not a duration/],
      [["task", "run", "--machine", "m", "--timeout", "25h", "--", "true"], /--timeout is at most 24 h/],
      [["task", "run", "--machine", "m", "--max-output", "32MiB", "--", "true"], /--max-output: /],
      [["task", "run", "--machine", "m", "--workdir", "tmp", "--", "true"], /--workdir "tmp" must be an absolute path/],
      [["task", "run", "--machine", "m", "--task-id", "a b", "--", "true"], /--task-id: a taskId is letters/],
      [["task", "run", "--machine", "m", "--since", "1h", "--", "true"], /task run takes no --since/],
      [["task", "run", "--machine", "all", "--", "true"], /machine/],
      [["task", "cancel", "t1"], /--machine ID .* or --fleet/],
      [["task", "frobnicate"], /unknown task action "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, env);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(message);
    }

    const bare = await startNatsServer();
    try {
      const result = await runCli(["task", "run", "--machine", "m", "--", "true"], { EDGE_AGENT_NATS_URL: bare.url });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^edge-agent: the server has no stream TASKS, TASK_OUTPUT, TASK_RESULTS: run edge-agent dev-setup against it/,
      );
    } finally {
      await bare.dispose();
    }
  });
});
