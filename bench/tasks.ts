import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
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
import { FakeTaskMachine } from "../test/fixtures/tasks/fake-task-agent.ts";
import { type NatsServerHandle, startNatsServer } from "../test/helpers/nats-server.ts";
import { createPlatformStreams } from "../test/helpers/streams.ts";
import { quantileOfSorted } from "./quantile.ts";

/**
 * Remote tasks, the operator's side (issue 26). Each figure with its baseline from the same run:
 *
 * - firstChunk: from the moment a machine hands an output chunk to JetStream (the time is the
 *   chunk's text) to the moment `edge-agent task run` prints it, read on its stdout by this process;
 *   against the same text printed by a local `sh` read over a pipe (what following costs over
 *   running it here). BENCH_TASKS_ROUNDS (default 20) tasks, one at a time.
 * - fleetEnds: a fleet task (`task run --all --json`) answered by BENCH_TASKS_FLEET (default 1,000)
 *   machines on the wire, every end counted; time from the task stored to each end printed, against
 *   the time the machines took to publish them all (whether following keeps up with the fleet).
 *
 * The machines here answer on the wire as agents do (test/fixtures/tasks): these figures are the
 * operator's path (JetStream, the ordered consumers, the CLI), not a task's process or the agent's
 * outbox.
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
        if (Date.now() > deadline || child.exitCode !== null)
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

export async function run(): Promise<Record<string, unknown>> {
  const rounds = Number(process.env.BENCH_TASKS_ROUNDS ?? 20);
  const fleetSize = Number(process.env.BENCH_TASKS_FLEET ?? 1_000);
  const server = await startNatsServer();
  const connection = await connect({ servers: server.url });
  try {
    await createPlatformStreams(connection);
    const local = percentiles(await localPipeDelays(rounds));
    const overTheWire = percentiles(await firstChunkDelays(server, connection, rounds));
    const fleet = await fleetEndDelays(server, connection, fleetSize);
    const fleetEnds = percentiles(fleet.delays);
    return {
      unit: "ms",
      firstChunk: {
        rounds,
        printedAfterSent: overTheWire,
        baselineLocalPipe: local,
        ratioP50: Math.round((overTheWire.p50 / Math.max(local.p50, 0.01)) * 10) / 10,
        goalMs: 300,
      },
      fleetEnds: {
        machines: fleetSize,
        endsPrinted: fleet.ends,
        printedAfterStored: fleetEnds,
        baselineMachinesPublishedAllMs: Math.round(fleet.publishedAllMs),
        ratioLastPrintedToPublishedAll: Math.round((fleetEnds.max / Math.max(fleet.publishedAllMs, 1)) * 100) / 100,
      },
    };
  } finally {
    await connection.close();
    await server.dispose();
  }
}
