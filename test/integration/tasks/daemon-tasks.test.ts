import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AgentProcess, startAgentProcess } from "../../helpers/agent-process.ts";
import { waitForFeedsRead } from "../../helpers/feeds-read.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { chunksOf, joinedOutput, publishTask, type ResultSeen, resultsOf } from "../../helpers/tasks.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const MACHINE = "d1";
const TASK = `machine.${MACHINE}.task`;

/** Whether a process runs (a zombie waiting for its parent to reap it has ended). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The most resident memory a process has had (VmHWM, KiB). */
function peakResidentKib(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((each) => each.startsWith("VmHWM:"));
  return Number(/(\d+)/.exec(line ?? "")?.[1]);
}

/**
 * Remote tasks on `edge-agent run`, the real daemon process, against a real nats-server: output
 * followed while the task runs, the daemon killed or stopped under a running task, and its memory
 * under a flood of output.
 */
describe("remote tasks on a real agent process", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let root: string;
  let agent: AgentProcess | undefined;

  const dirs = () => ({ dataDir: join(root, "data"), configDir: join(root, "config") });
  const startAgent = async (): Promise<AgentProcess> => {
    agent = await startAgentProcess(
      {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_MACHINE_ID: MACHINE,
        EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "1",
        EDGE_AGENT_LOG_LEVEL: "info",
      },
      dirs(),
    );
    await waitForFeedsRead(operator, MACHINE);
    return agent;
  };
  const endOf = (taskId: string, timeoutMs = 30_000): Promise<ResultSeen> =>
    waitFor(`the result of ${taskId}`, async () => (await resultsOf(operator, taskId))[0], timeoutMs);

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    root = await mkdtemp(join(tmpdir(), "edge-agent-daemon-tasks-"));
  });

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await operator.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("sends a task's output while it runs: the first line is seen before the task can end", async () => {
    await startAgent();
    const gate = join(root, "go-on");
    const script = `echo first line\nwhile [ ! -e "${gate}" ]; do sleep 0.05; done\necho second line`;
    const sent = await publishTask(operator, TASK, {
      taskId: "live-1",
      run: { script, interpreter: "sh" },
      timeoutSeconds: 60,
    });
    const first = await waitFor("the first chunk", async () => (await chunksOf(operator, "live-1"))[0]);
    expect(first).toMatchObject({
      seq: 0,
      stream: "stdout",
      data: "first line\n",
      subject: `machine.${MACHINE}.task.output`,
    });
    // The task is waiting for this file, which is made only now: its end cannot have been reported.
    expect(await resultsOf(operator, "live-1")).toEqual([]);
    await writeFile(gate, "");
    const end = await endOf("live-1");
    expect(end.causationId).toBe(sent.eventId);
    expect(end.result).toMatchObject({ status: "SUCCEEDED", exitCode: 0, chunks: 2 });
    expect(joinedOutput(await chunksOf(operator, "live-1")).stdout).toBe("first line\nsecond line\n");
  });

  it("a task running when the agent is killed (kill -9) is reported FAILED at the next start, never run again, its processes stopped", async () => {
    await startAgent();
    const pidFile = join(root, "task.pid");
    const script = `echo $$ > "${pidFile}"\necho started\nsleep 300`;
    await publishTask(operator, TASK, { taskId: "crash-1", run: { script, interpreter: "sh" }, timeoutSeconds: 600 });
    await waitFor("the task's output", async () => (await chunksOf(operator, "crash-1")).length > 0);
    const taskPid = Number(readFileSync(pidFile, "utf8"));
    await (agent as AgentProcess).stop("SIGKILL");
    // The process the crash left: still there, until the next start stops it by its marker.
    expect(running(taskPid)).toBe(true);
    await agent?.dispose();
    await startAgent();
    const end = await endOf("crash-1");
    expect(end.result).toMatchObject({ status: "FAILED", taskId: "crash-1" });
    expect(end.result.error).toMatch(/interrupted: the agent stopped unexpectedly .* it is not run again/);
    await waitFor("the task's process stopped", () => !running(taskPid));
    expect(joinedOutput(await chunksOf(operator, "crash-1")).stdout).toBe("started\n");
    expect(await resultsOf(operator, "crash-1")).toHaveLength(1);
  });

  it("a task running when the agent is stopped (SIGTERM) is stopped and reported FAILED, within the stop's deadline", async () => {
    await startAgent();
    await publishTask(operator, TASK, {
      taskId: "stop-1",
      run: { script: "trap '' TERM; echo started; while :; do sleep 1; done", interpreter: "sh" },
      timeoutSeconds: 600,
    });
    await waitFor("the task's output", async () => (await chunksOf(operator, "stop-1")).length > 0);
    const exit = await (agent as AgentProcess).stop("SIGTERM");
    expect(exit.code).toBe(0);
    await startAgent();
    expect((await endOf("stop-1")).result).toMatchObject({
      status: "FAILED",
      signal: "SIGKILL",
      error: expect.stringContaining("the agent stopped while it ran"),
    });
  });

  it("reads a flood of output without holding it: memory stays bounded, the result says what was dropped", async () => {
    const daemon = await startAgent();
    const flood = 1024 * 1024 * 1024;
    await publishTask(operator, TASK, {
      taskId: "flood-1",
      run: { script: `head -c ${flood} /dev/zero | tr '\\0' 'y'; echo; echo done`, interpreter: "sh" },
      timeoutSeconds: 600,
    });
    const end = await endOf("flood-1", 120_000);
    expect(end.result).toMatchObject({
      status: "SUCCEEDED",
      truncated: true,
      bytesSeen: { stdout: flood + 6 },
      lastLines: { stdout: [expect.stringMatching(/^y+$/), "done"] },
    });
    // The default 1 MiB kept, in chunks of at most 16 KiB.
    expect(joinedOutput(await chunksOf(operator, "flood-1")).stdout).toBe("y".repeat(1024 * 1024));
    // A gigabyte went through: what the agent ever held is a small part of it.
    expect(peakResidentKib(daemon.child.pid as number)).toBeLessThan(400 * 1024);
  });
});
