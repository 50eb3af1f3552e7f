import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import {
  COMMAND_STREAMS,
  EventType,
  eventHeaderEntries,
  fleetSubjects,
  machineSubjects,
  TaskCommand,
  type TaskResult,
} from "../src/contracts/index.ts";
import { simulatedMachineId } from "../src/simulator/index.ts";
import { FakeTaskMachine } from "../test/fixtures/tasks/fake-task-agent.ts";
import { type AgentProcess, startAgentProcess } from "../test/helpers/agent-process.ts";
import { waitForFeedsRead } from "../test/helpers/feeds-read.ts";
import { type NatsServerHandle, startNatsServer } from "../test/helpers/nats-server.ts";
import { createPlatformStreams } from "../test/helpers/streams.ts";
import { fleetSummaryOf, type Shard, startShard } from "./fleet.ts";
import { readMemoryKiB } from "./proc-stats.ts";
import { quantileOfSorted } from "./quantile.ts";

/**
 * Remote tasks (issue 26), each figure with its baseline from the same run:
 *
 * - firstChunk: a real agent (`edge-agent run`) runs `sh -c 'date +%s%N'`; from the time the process
 *   printed to the moment `edge-agent task run` printed it (read on its stdout here), against the
 *   same print of a local `sh` read over a pipe (the goal: under 300 ms). Beside it, the operator's
 *   part alone: a chunk handed to JetStream by a machine until `task run` prints it.
 *   BENCH_TASKS_ROUNDS (default 20) tasks, one at a time.
 * - fleetEnds: BENCH_TASKS_FLEET (default 1,000) simulated agents (src/simulator, in processes of
 *   100, data in /dev/shm) run `true` as one fleet task: every end printed by `task run --all`, each
 *   timed from the task's `sent` line (p50, p99), against the same task on one of them alone. Beside
 *   it, the operator's part alone: the same number of ends published at once on the wire.
 * - floodMemory: a task writes 256 MiB (`yes`) with --max-output 16 MiB on a real agent whose outbox
 *   holds 8 MiB: the agent's peak resident memory against its idle memory, and its outbox files'
 *   peak size; online, and offline (the server stopped while the flood runs, so every chunk can only
 *   go to the outbox, which evicts chunks first when full).
 *
 * Parts that need the agent's side of tasks say so instead of a figure when it is not there.
 */
export const name = "tasks";

const CLI = resolve(import.meta.dirname, "../src/cli/main.ts");
/** Wall-clock milliseconds with sub-millisecond precision, comparable with another process's `Date.now()`. */
const wallMs = (): number => performance.timeOrigin + performance.now();

interface Cli {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves with the arrival time of the first stdout text that matches. */
  stdoutLine(match: (line: string) => boolean, timeoutMs: number): Promise<{ line: string; atMs: number }>;
  /** Every stdout line so far, with when it arrived. */
  lines(): ReadonlyArray<{ readonly line: string; readonly atMs: number }>;
  stderr(): string;
}

function startCli(args: readonly string[], env: Record<string, string>): Cli {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: Array<{ line: string; atMs: number }> = [];
  let partial = "";
  const waiters: Array<() => void> = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    const atMs = wallMs();
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() as string;
    for (const line of parts) lines.push({ line, atMs });
    for (const wake of waiters.splice(0)) wake();
  });
  // The process may exit before its last lines are read from the pipe: a line is missing only
  // once its stdout has ended, not once it has exited.
  let stdoutEnded = false;
  child.stdout?.on("end", () => {
    stdoutEnded = true;
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  return {
    child,
    exited,
    stderr: () => stderr,
    lines: () => lines,
    async stdoutLine(match, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let from = 0;
      for (;;) {
        for (; from < lines.length; from++)
          if (match((lines[from] as { line: string }).line)) return lines[from] as { line: string; atMs: number };
        if (Date.now() > deadline || stdoutEnded)
          throw new Error(`no such line from ${args.join(" ")} within ${timeoutMs} ms: ${stderr.slice(-500)}`);
        await new Promise<void>((wake) => {
          waiters.push(wake);
          setTimeout(wake, 200);
        });
      }
    },
  };
}

function percentiles(values: readonly number[]): { p50: number; p99: number; max: number; count: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (value: number | undefined): number => Math.round((value ?? Number.NaN) * 10) / 10;
  return {
    p50: round(quantileOfSorted(sorted, 0.5)),
    p99: round(quantileOfSorted(sorted, 0.99)),
    max: round(sorted.at(-1)),
    count: sorted.length,
  };
}

/** The local baseline: a shell prints the time, this process reads it over a pipe. */
async function localPipeDelays(rounds: number): Promise<number[]> {
  const delays: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const child = spawn("sh", ["-c", "date +%s%N"], { stdio: ["ignore", "pipe", "ignore"] });
    const printedNs = await new Promise<{ text: string; atMs: number }>((done) =>
      child.stdout.once("data", (chunk: Buffer) => done({ text: chunk.toString(), atMs: wallMs() })),
    );
    delays.push(printedNs.atMs - Number(printedNs.text.trim()) / 1e6);
    await new Promise((done) => child.once("exit", done));
  }
  return delays;
}

/** A chunk handed to JetStream by a machine, to `task run` printing it. */
async function firstChunkDelays(
  server: NatsServerHandle,
  connection: NatsConnection,
  rounds: number,
): Promise<number[]> {
  const machine = new FakeTaskMachine(connection, "bench-first-chunk");
  await machine.start();
  const delays: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const taskId = `bench-first-${round}-${Date.now()}`;
      const cli = startCli(
        ["task", "run", "--machine", machine.machineId, "--task-id", taskId, "--wait", "60s", "--", "true"],
        {
          EDGE_AGENT_NATS_URL: server.url,
        },
      );
      await machine.received(round + 1, 30_000);
      const sentAtMs = wallMs();
      await machine.chunk(taskId, 0, "stdout", `${sentAtMs}\n`);
      const printed = await cli.stdoutLine((line) => line === String(sentAtMs), 30_000);
      delays.push(printed.atMs - sentAtMs);
      await machine.result(taskId, { status: "SUCCEEDED", chunks: 1 });
      const code = await cli.exited;
      if (code !== 0) throw new Error(`task run exited ${code}: ${cli.stderr().slice(-500)}`);
    }
  } finally {
    await machine.stop();
  }
  return delays;
}

/**
 * A fleet task answered by `machines` machines at once, each end published as its machine would
 * (its own subject and X-Machine-ID); answers when each end was printed and when the last was sent.
 */
async function fleetEndDelays(
  server: NatsServerHandle,
  connection: NatsConnection,
  machines: number,
): Promise<{ delays: number[]; publishedAllMs: number; ends: number }> {
  const js = jetstream(connection);
  const consumer = await js.consumers.get(COMMAND_STREAMS.fleetTasks, {
    filter_subjects: [fleetSubjects.task],
    deliver_policy: "new",
  });
  let storedAtMs = 0;
  let publishedAllMs = 0;
  const answering = (async () => {
    const task = await consumer.next({ expires: 60_000 });
    if (!task) throw new Error("no fleet task within 60 s");
    storedAtMs = task.info.timestampNanos / 1e6;
    const body = TaskCommand.parse(task.json());
    const publishes: Promise<unknown>[] = [];
    for (let index = 0; index < machines; index++) {
      const machineId = `bench-fleet-${String(index).padStart(5, "0")}`;
      const end: TaskResult = {
        taskId: body.taskId,
        status: "SUCCEEDED",
        exitCode: 0,
        signal: null,
        error: null,
        startedAt: new Date().toISOString(),
        finishedAt: new Date().toISOString(),
        durationMs: 5,
        bytesSeen: { stdout: 0, stderr: 0 },
        truncated: false,
        chunks: 0,
        lastLines: { stdout: [], stderr: [] },
      };
      const eventId = `${body.taskId}-${index}`;
      const eventHeaders = natsHeaders();
      for (const [key, value] of eventHeaderEntries({
        eventId,
        eventType: EventType.taskResult,
        machineId,
        timestamp: new Date().toISOString(),
        correlationId: eventId,
        schemaVersion: "1",
      }))
        eventHeaders.set(key, value);
      publishes.push(
        js.publish(machineSubjects(machineId).taskResult, JSON.stringify(end), {
          msgID: eventId,
          headers: eventHeaders,
        }),
      );
      if (publishes.length >= 256) await Promise.all(publishes.splice(0));
    }
    await Promise.all(publishes);
    publishedAllMs = wallMs() - storedAtMs;
  })();
  const cli = startCli(["task", "run", "--all", "--json", "--wait", "5m", "--", "true"], {
    EDGE_AGENT_NATS_URL: server.url,
  });
  await answering;
  const delays: number[] = [];
  const seen = new Set<string>();
  await cli.stdoutLine((line) => {
    const parsed = JSON.parse(line) as { type: string; machineId?: string };
    if (parsed.type === "result" && parsed.machineId && !seen.has(parsed.machineId)) seen.add(parsed.machineId);
    return seen.size >= machines;
  }, 300_000);
  cli.child.kill("SIGINT");
  await cli.exited;
  for (const { line, atMs } of cli.lines())
    if ((JSON.parse(line) as { type: string }).type === "result") delays.push(atMs - storedAtMs);
  return { delays, publishedAllMs, ends: seen.size };
}

/** Environment of a real agent that takes unsigned tasks (the bench's platform signs nothing). */
const agentEnv = (server: NatsServerHandle, machineId: string, extra: Record<string, string> = {}) => ({
  EDGE_AGENT_NATS_URL: server.url,
  EDGE_AGENT_MACHINE_ID: machineId,
  EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "1",
  EDGE_AGENT_LOG_LEVEL: "warn",
  ...extra,
});

/**
 * A real agent (`edge-agent run`) runs `sh -c 'date +%s%N'`: the time the process printed, to the
 * moment `task run` printed it (the agent's read of the pipe, its chunking, outbox and publish
 * included). Null when the agent runs no tasks (no end within a minute).
 */
async function agentFirstChunkDelays(
  server: NatsServerHandle,
  connection: NatsConnection,
  rounds: number,
): Promise<number[] | null> {
  const agent = await startAgentProcess(agentEnv(server, "bench-agent"));
  const delays: number[] = [];
  try {
    // A task feed starts with what comes next: a task sent before the agent's first read is not its to run.
    await waitForFeedsRead(connection, "bench-agent");
    for (let round = 0; round < rounds; round++) {
      const cli = startCli(
        ["task", "run", "--machine", "bench-agent", "--wait", "60s", "--", "sh", "-c", "date +%s%N"],
        {
          EDGE_AGENT_NATS_URL: server.url,
        },
      );
      const printed = await cli.stdoutLine((line) => /^\d{19}$/.test(line), 70_000).catch(() => null);
      const code = await cli.exited;
      if (!printed) {
        if (round === 0) return null;
        throw new Error(`round ${round}: no output (exit ${code}): ${cli.stderr().slice(-500)}`);
      }
      if (code !== 0) throw new Error(`round ${round}: task run exited ${code}: ${cli.stderr().slice(-500)}`);
      delays.push(printed.atMs - Number(printed.line) / 1e6);
    }
  } finally {
    await agent.dispose();
  }
  return delays;
}

/** Agents per simulated-fleet process: fork() from a process of thousands of agents (1 GB) costs about 144 ms a spawn. */
const AGENTS_PER_SHARD = 100;

/**
 * `count` simulated agents (src/simulator, in processes of AGENTS_PER_SHARD, as bench/fleet.ts runs
 * them: a task's process is forked from its agent's, and fork() grows with the forking process's
 * memory) run `true` as one fleet task: every end printed by `task run --all`, each timed from the
 * task's `sent` line; against the same task on one of them alone, in the same run. The task goes
 * out once every agent has read its feeds (a task feed starts with what comes next). Null when the
 * agents run no tasks.
 */
async function simulatedFleetEnds(
  server: NatsServerHandle,
  count: number,
): Promise<{ baselineOneMachineMs: number; delays: number[]; ends: number; feedsReadAfterMs: number } | null> {
  const root = await mkdtemp(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "edge-bench-tasks-fleet-"));
  const settingsEnv = {
    EDGE_AGENT_NATS_URL: server.url,
    EDGE_AGENT_CONFIG_DIR: root,
    EDGE_AGENT_DATA_DIR: root,
    EDGE_AGENT_TASKS_ALLOW_UNSIGNED: "1",
    EDGE_AGENT_ALLOW_UNSIGNED: "1",
    EDGE_AGENT_LOG_LEVEL: "warn",
  };
  const startedMs = performance.now();
  const shards: Shard[] = [];
  for (let firstIndex = 0; firstIndex < count; firstIndex += AGENTS_PER_SHARD) {
    const shardSize = Math.min(AGENTS_PER_SHARD, count - firstIndex);
    // Fleet-wide pacing as in bench/fleet.ts: 100 agents connecting at once, shared by the shards.
    const startConcurrency = Math.max(1, Math.round((100 * shardSize) / count));
    shards.push(
      startShard(
        {
          type: "start",
          count: shardSize,
          firstIndex,
          server: server.url,
          dataDir: root,
          startConcurrency,
          settingsEnv,
        },
        () => undefined,
      ),
    );
  }
  try {
    await Promise.all(shards.map((shard) => shard.started));
    for (let waited = 0; ; waited += 500) {
      const progress = await fleetSummaryOf(shards);
      if (progress.feedsRead >= count) break;
      if (waited > 300_000)
        throw new Error(
          `${progress.connected} of ${count} agents connected, ${progress.feedsRead} read their feeds, in 300 s`,
        );
      await sleep(500);
    }
    const feedsReadAfterMs = performance.now() - startedMs;
    const timeToEnd = async (args: string[], ends: number): Promise<number[] | null> => {
      const cli = startCli(["task", "run", ...args, "--json", "--", "true"], { EDGE_AGENT_NATS_URL: server.url });
      const sent = await cli.stdoutLine((line) => line.includes('"type":"sent"'), 60_000);
      const machines = new Set<string>();
      const all = await cli
        .stdoutLine((line) => {
          const parsed = JSON.parse(line) as { type: string; machineId?: string };
          if (parsed.type === "result" && parsed.machineId) machines.add(parsed.machineId);
          return machines.size >= ends;
        }, 600_000)
        .catch(() => null);
      if (cli.child.exitCode === null) cli.child.kill("SIGINT");
      await cli.exited;
      if (!all) return null;
      return cli
        .lines()
        .filter(({ line }) => (JSON.parse(line) as { type: string }).type === "result")
        .map(({ atMs }) => atMs - sent.atMs);
    };
    const alone = await timeToEnd(["--machine", simulatedMachineId(0), "--wait", "60s"], 1);
    if (!alone) return null;
    const delays = await timeToEnd(["--all", "--wait", "10m"], count);
    if (!delays) throw new Error(`not every one of ${count} agents reported the fleet task's end within 10 minutes`);
    return { baselineOneMachineMs: alone[0] as number, delays, ends: delays.length, feedsReadAfterMs };
  } finally {
    for (const shard of shards) shard.stop();
    await Promise.all(shards.map((shard) => shard.stopped));
    await rm(root, { recursive: true, force: true });
  }
}

interface FloodFigures {
  readonly outputBytes: number;
  readonly maxOutputBytes: number;
  readonly outboxMaxBytes: number;
  readonly idleRssMiB: number;
  readonly peakRssMiB: number;
  readonly peakOutboxFilesMiB: number;
  readonly end: Pick<TaskResult, "status" | "truncated" | "chunks" | "bytesSeen"> | null;
}

const MIB = 1024 * 1024;
const round1 = (value: number): number => Math.round(value * 10) / 10;

/** The agent's resident memory and its outbox files' size, sampled every 50 ms while `work` runs. */
async function sampled(
  agent: AgentProcess,
  work: () => Promise<void>,
): Promise<{ rssKiB: number; outboxBytes: number }> {
  const pid = agent.child.pid as number;
  const files = ["outbox.db", "outbox.db-wal"].map((file) => join(agent.dataDir, file));
  const peak = { rssKiB: 0, outboxBytes: 0 };
  const sample = (): void => {
    peak.rssKiB = Math.max(peak.rssKiB, readMemoryKiB(pid).rss);
    const bytes = files.reduce((sum, file) => sum + (existsSync(file) ? statSync(file).size : 0), 0);
    peak.outboxBytes = Math.max(peak.outboxBytes, bytes);
  };
  const timer = setInterval(sample, 50);
  try {
    await work();
  } finally {
    clearInterval(timer);
    sample();
  }
  return peak;
}

/**
 * A task floods its output (`yes` for `outputBytes`) on a real agent whose outbox holds at most
 * `outboxMaxBytes`: its peak memory against its idle memory before the task, and its outbox files.
 * `offline`: the server is stopped once the task printed its first line and started again after
 * the flood, so the chunks can only go to the outbox (which evicts them first when full).
 */
async function agentFloodMemory(
  server: NatsServerHandle,
  connection: NatsConnection,
  offline: boolean,
): Promise<FloodFigures | null> {
  const outputBytes = 256 * MIB;
  const maxOutputBytes = 16 * MIB;
  const outboxMaxBytes = 8 * MIB;
  const machineId = offline ? "bench-flood-offline" : "bench-flood";
  const agent = await startAgentProcess(
    agentEnv(server, machineId, { EDGE_AGENT_OUTBOX_MAX_BYTES: String(outboxMaxBytes) }),
  );
  try {
    await waitForFeedsRead(connection, machineId);
    const idle: number[] = [];
    for (let index = 0; index < 40; index++) {
      idle.push(readMemoryKiB(agent.child.pid as number).rss);
      await sleep(50);
    }
    const script = `echo started; sleep ${offline ? 2 : 0}; yes 'flood flood flood flood flood flood flood' | head -c ${outputBytes}; echo`;
    const cli = startCli(
      [
        "task",
        "run",
        "--machine",
        machineId,
        "--max-output",
        String(maxOutputBytes),
        "--json",
        "--wait",
        "5m",
        "--",
        "sh",
        "-c",
        script,
      ],
      { EDGE_AGENT_NATS_URL: server.url },
    );
    let end: FloodFigures["end"] = null;
    const peak = await sampled(agent, async () => {
      const started = await cli.stdoutLine((line) => line.includes("started"), 60_000).catch(() => null);
      if (!started) return;
      if (offline) {
        await server.stop();
        // The flood runs while the agent cannot send: its outbox takes the chunks, up to its bound.
        await sleep(15_000);
        await server.start();
      }
      const result = await cli.stdoutLine((line) => line.includes('"type":"result"'), 300_000);
      const parsed = JSON.parse(result.line) as TaskResult;
      end = { status: parsed.status, truncated: parsed.truncated, chunks: parsed.chunks, bytesSeen: parsed.bytesSeen };
    });
    if (cli.child.exitCode === null) cli.child.kill("SIGINT");
    await cli.exited;
    if (end === null) return null;
    return {
      outputBytes,
      maxOutputBytes,
      outboxMaxBytes,
      idleRssMiB: round1(Math.max(...idle) / 1024),
      peakRssMiB: round1(peak.rssKiB / 1024),
      peakOutboxFilesMiB: round1(peak.outboxBytes / MIB),
      end,
    };
  } finally {
    await agent.dispose();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const rounds = Number(process.env.BENCH_TASKS_ROUNDS ?? 20);
  const fleetSize = Number(process.env.BENCH_TASKS_FLEET ?? 1_000);
  const server = await startNatsServer();
  const connection = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const notRun = "the agent runs no tasks here (its side of issue 26 is not on this branch)";
  try {
    await createPlatformStreams(connection);
    const local = percentiles(await localPipeDelays(rounds));
    const overTheWire = percentiles(await firstChunkDelays(server, connection, rounds));
    const fromAgent = await agentFirstChunkDelays(server, connection, rounds);
    const agentFirst = fromAgent ? percentiles(fromAgent) : null;
    const wireFleet = await fleetEndDelays(server, connection, fleetSize);
    const wireEnds = percentiles(wireFleet.delays);
    const simulated = await simulatedFleetEnds(server, fleetSize);
    const simulatedEnds = simulated ? percentiles(simulated.delays) : null;
    const flood = await agentFloodMemory(server, connection, false);
    const floodOffline = flood ? await agentFloodMemory(server, connection, true) : null;
    return {
      unit: "ms",
      firstChunk: {
        rounds,
        goalMs: 300,
        agentPrintToOperatorPrint: agentFirst ?? notRun,
        streamToOperatorPrint: overTheWire,
        baselineLocalPipe: local,
        ratioP50AgentToLocal: agentFirst ? round1(agentFirst.p50 / Math.max(local.p50, 0.01)) : null,
        ratioP50StreamToLocal: round1(overTheWire.p50 / Math.max(local.p50, 0.01)),
      },
      fleetEnds: simulated
        ? {
            machines: fleetSize,
            simulatedAgents: true,
            feedsReadAfterMs: Math.round(simulated.feedsReadAfterMs),
            endsPrinted: simulated.ends,
            sentToEndPrinted: simulatedEnds,
            baselineOneMachineMs: round1(simulated.baselineOneMachineMs),
            ratioP99ToOneMachine: round1((simulatedEnds?.p99 ?? 0) / Math.max(simulated.baselineOneMachineMs, 1)),
          }
        : { simulatedAgents: notRun },
      fleetEndsOperatorSide: {
        machines: fleetSize,
        endsPrinted: wireFleet.ends,
        storedToEndPrinted: wireEnds,
        baselineMachinesPublishedAllMs: Math.round(wireFleet.publishedAllMs),
        ratioLastPrintedToPublishedAll: Math.round((wireEnds.max / Math.max(wireFleet.publishedAllMs, 1)) * 100) / 100,
      },
      floodMemory: flood ? { online: flood, offline: floodOffline } : notRun,
    };
  } finally {
    await connection.close();
    await server.dispose();
  }
}
