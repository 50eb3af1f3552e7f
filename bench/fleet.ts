import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ensureNatsServer } from "../scripts/nats-server-runtime.ts";
import { AGENT_CONFIG_BUCKET, CONFIG_DEFAULTS_KEY } from "../src/contracts/index.ts";
import type { FleetEvent, FleetSummary } from "../src/simulator/index.ts";
import { simulatedMachineId } from "../src/simulator/index.ts";
import { TOOL_SCRIPT, toolZip } from "../test/fixtures/tools/tool-kit.ts";
import {
  APP_AND_SYSTEM_ACCOUNTS,
  freeLoopbackPort,
  type NatsServerHandle,
  startNatsServer,
} from "../test/helpers/nats-server.ts";
import { createPlatformStreams } from "../test/helpers/streams.ts";
import type { ShardCommand, ShardReply } from "./fleet-shard.ts";
import { ApiLimitAdvisories, closedConnectionReasons, readJsz, sampleJetStreamPeaks } from "./jetstream-watch.ts";
import {
  readCpuTicks,
  readMachineCpuTicks,
  readMemoryKiB,
  CLOCK_TICKS_PER_SECOND as TICKS_PER_SECOND,
} from "./proc-stats.ts";
import { quantileOfSorted } from "./quantile.ts";
import { restartTimeline, serverWarnings } from "./server-log.ts";

/**
 * The platform at fleet scale: N simulated agents (src/simulator, each made by createAgent with its
 * own identity, outbox and connection) against one nats-server in its own process, for each N of
 * BENCH_FLEET_SIZES (default 1000,5000,10000,20000). Per N: memory per agent, time until all are
 * connected and until every agent has read its command feeds once (its own `commands.lastCheckedAt`),
 * the server's CPU and memory per 1,000 idle agents and the JetStream consumers it holds for them,
 * a `defaults` change until every agent reported APPLIED, a server restart until every agent is
 * back, its outbox drained and its feeds read again (with the server's CPU, the spread of reconnect
 * times and the JetStream API requests in flight), a fleet-wide tool install until every INSTALLED
 * (the tool served from a NATS object store), and the consumers left once every agent has stopped.
 * JetStream API requests (`/jsz`) and API limit advisories (`$JS.EVENT.ADVISORY.API.LIMIT_REACHED`,
 * from the system account: bench/jetstream-watch.ts) are counted per phase. The fleet runs in shards
 * of as many agents as one process's file descriptors allow. A larger N is skipped, with the reason,
 * when the one before failed a phase, the memory it would need is not available, or nats-server could
 * not open a descriptor per connection within this machine's limit.
 *
 * BENCH_FLEET_DATA_DIR: the agents' data (default /dev/shm: one shared disk fsyncing for thousands
 * of agents measures that disk, not the agents; every real device has its own).
 * BENCH_FLEET_IDLE_SECONDS (default 30), BENCH_FLEET_PHASE_SECONDS (default 900: bound on each
 * phase), BENCH_FLEET_START_CONCURRENCY (default 100 agents connecting at once, fleet-wide),
 * BENCH_FLEET_TOOL_MAX_AGENTS (default 1000): larger fleets leave the tool install out.
 * BENCH_FLEET_KEEP_SERVER_LOG: a directory where each size's nats-server log is kept. Each
 * simulated install runs its tool's commands and then checks the tool's liveness by reading every
 * process's command line in /proc, all from one process on two cores: beyond a thousand agents that
 * measures this machine's process table, not the platform.
 */
export const name = "fleet";

const SHARD_SCRIPT = resolve(import.meta.dirname, "fleet-shard.ts");
/** A socket, the outbox's database, -wal and -shm, and files opened for a moment (measured: about 5). */
const FDS_PER_AGENT = 6;
/** Descriptors a shard keeps for Node itself and its IPC channel. */
const FD_RESERVE = 512;
/** The server's auth timeout in the bench (see runSize). */
const AUTH_TIMEOUT_SECONDS = 30;
/** How long a catch-up consumer an agent could not remove outlives it (src/transport/stream-reads.ts), plus slack. */
const CATCH_UP_CONSUMER_GONE_SECONDS = 45;
const TOOL_ID = "fleet-probe";
/** Descriptors nats-server keeps besides its clients: listeners, JetStream's stream and consumer files, logs. */
const SERVER_FD_RESERVE = 256;
/** Memory kept free when deciding whether a larger fleet fits. */
const MEMORY_RESERVE_KIB = 2 * 1024 * 1024;

class PhaseTimeout extends Error {
  readonly code = "EDGE_BENCH_PHASE_TIMEOUT";
  constructor(what: string, seconds: number, detail: string) {
    super(`${what} did not finish within ${seconds} s (${detail})`);
    this.name = "PhaseTimeout";
  }
}

/** `work`, or a PhaseTimeout after `seconds` (the timer is cleared either way). */
async function withDeadline<T>(work: Promise<T>, what: string, seconds: number, detail: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new PhaseTimeout(what, seconds, detail())), seconds * 1000)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it holds or `seconds` pass; `detail` says how far it got. */
async function until(
  what: string,
  seconds: number,
  check: () => Promise<boolean> | boolean,
  detail: () => string,
  intervalMs = 250,
): Promise<void> {
  const deadline = performance.now() + seconds * 1000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new PhaseTimeout(what, seconds, detail());
    await sleep(intervalMs);
  }
}

function procStat(pid: number): { ticks: number; rssKiB: number } {
  return { ticks: readCpuTicks(pid), rssKiB: readMemoryKiB(pid).rss };
}

function memAvailableKiB(): number {
  return Number(/^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0);
}

/** This process's open-file limits; children inherit them (the soft one can only be raised up to the hard one). */
function openFileLimits(): { soft: number; hard: number } {
  const match = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return { soft: Number(match?.[1] ?? 1024), hard: Number(match?.[2] ?? 1024) };
}

function quantiles(
  values: readonly number[],
): { p50: number; p90: number; p99: number; max: number; min: number } | null {
  if (values.length === 0) return null;
  const sorted = values.toSorted((a, b) => a - b);
  const at = (q: number): number => Math.round(quantileOfSorted(sorted, q) ?? 0);
  return {
    min: Math.round(sorted[0] ?? 0),
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: Math.round(sorted.at(-1) ?? 0),
  };
}

/** How many values fall in each whole second from `originMs`: the shape of a storm. */
function perSecond(values: readonly number[]): number[] {
  const counts: number[] = [];
  for (const value of values) {
    const second = Math.max(0, Math.floor(value / 1000));
    while (counts.length <= second) counts.push(0);
    counts[second] = (counts[second] ?? 0) + 1;
  }
  return counts;
}

/** One process of simulated agents (bench/fleet-shard.ts), driven over IPC. */
export interface Shard {
  readonly child: ChildProcess;
  readonly started: Promise<void>;
  readonly stopped: Promise<void>;
  summary(): Promise<FleetSummary>;
  stop(): void;
}

export function startShard(
  command: Extract<ShardCommand, { type: "start" }>,
  onEvents: (events: readonly FleetEvent[]) => void,
): Shard {
  const child = fork(SHARD_SCRIPT, [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, MALLOC_ARENA_MAX: "2" },
  });
  let requestId = 0;
  const waiting = new Map<number, (summary: FleetSummary) => void>();
  let startedResolve: () => void = () => undefined;
  let startedReject: (error: Error) => void = () => undefined;
  const started = new Promise<void>((resolveStart, rejectStart) => {
    startedResolve = resolveStart;
    startedReject = rejectStart;
  });
  // Awaited by the driver; a shard that dies later must not also be an unhandled rejection.
  started.catch(() => undefined);
  const stopped = new Promise<void>((resolveStop) => child.once("exit", () => resolveStop()));
  child.once("exit", (code) => startedReject(new Error(`fleet shard exited (${code}) before its agents started`)));
  child.on("message", (reply: ShardReply) => {
    if (reply.type === "events") onEvents(reply.events);
    else if (reply.type === "started") startedResolve();
    else if (reply.type === "failed") startedReject(new Error(reply.message));
    else if (reply.type === "summary") {
      waiting.get(reply.requestId)?.(reply.summary);
      waiting.delete(reply.requestId);
    }
  });
  child.send(command);
  return {
    child,
    started,
    stopped,
    summary() {
      const id = ++requestId;
      return new Promise((resolveSummary) => {
        waiting.set(id, resolveSummary);
        child.send({ type: "summary", requestId: id } satisfies ShardCommand);
      });
    },
    stop() {
      if (child.connected) child.send({ type: "stop" } satisfies ShardCommand);
    },
  };
}

/** The whole fleet's summary: every shard's, added up. */
export async function fleetSummaryOf(shards: readonly Shard[]): Promise<FleetSummary> {
  const parts = await Promise.all(shards.map((shard) => shard.summary()));
  return parts.reduce((sum, part) => ({
    count: sum.count + part.count,
    started: sum.started + part.started,
    connected: sum.connected + part.connected,
    outboxPending: sum.outboxPending + part.outboxPending,
    agentsWithPending: sum.agentsWithPending + part.agentsWithPending,
    feedsRead: sum.feedsRead + part.feedsRead,
    feedsReadLatestAtMs:
      sum.feedsReadLatestAtMs === null || part.feedsReadLatestAtMs === null
        ? (sum.feedsReadLatestAtMs ?? part.feedsReadLatestAtMs)
        : Math.max(sum.feedsReadLatestAtMs, part.feedsReadLatestAtMs),
    agentsWithCommandProblems: sum.agentsWithCommandProblems + part.agentsWithCommandProblems,
  }));
}

interface Environment {
  readonly dataRoot: string;
  readonly idleSeconds: number;
  readonly phaseSeconds: number;
  readonly startConcurrency: number;
  readonly agentsPerShard: number;
  /** Where to keep each size's server log (BENCH_FLEET_KEEP_SERVER_LOG), or null. */
  readonly keepServerLogDir: string | null;
  /** Why this size leaves the tool install out (a smaller fleet did not finish it in time). */
  readonly skipToolInstall: string | null;
}

/** Consumers per stream, the streams that have any: whose they are (a command stream's, an object store's...). */
async function consumersByStream(manager: JetStreamManager): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for await (const stream of manager.streams.list()) {
    if (stream.state.consumer_count > 0) counts[stream.config.name] = stream.state.consumer_count;
  }
  return counts;
}

/**
 * The JetStream consumers the server holds once every agent has stopped (account info): the goal is
 * none. A catch-up consumer an agent could not remove goes after its inactive threshold: waited for.
 */
async function consumersAfterStop(operator: NatsConnection): Promise<{
  consumersAtStop: number;
  byStreamAtStop: Record<string, number>;
  consumersLeft: number;
  waitedMs: number;
}> {
  const manager = await jetstreamManager(operator);
  const consumersAtStop = (await manager.getAccountInfo()).consumers;
  const byStreamAtStop = await consumersByStream(manager);
  const began = performance.now();
  let consumersLeft = consumersAtStop;
  while (consumersLeft > 0 && performance.now() - began < CATCH_UP_CONSUMER_GONE_SECONDS * 1000) {
    await sleep(1_000);
    consumersLeft = (await manager.getAccountInfo()).consumers;
  }
  return { consumersAtStop, byStreamAtStop, consumersLeft, waitedMs: Math.round(performance.now() - began) };
}

const oneDecimal = (values: readonly number[]): number[] => values.map((value) => Number(value.toFixed(1)));

/** One fleet size, start to stop. Returns its figures, and the phase that failed if one did. */
async function runSize(agents: number, environment: Environment): Promise<Record<string, unknown>> {
  const { idleSeconds, phaseSeconds } = environment;
  const monitorPort = await freeLoopbackPort();
  const logDir = await mkdtemp(join(tmpdir(), "edge-agent-fleet-log-"));
  // Limits raised so the fleet, not a default, is what is measured. The log goes to a file: through
  // the helper's pipe, thousands of warnings a second (slow read loops under load) block the
  // server's log lock, and with it every connection that logs (a 5,000-agent run stalled so).
  // A system account with a user, so the API limit advisories (published there) can be counted; the
  // agents and the operator connect without credentials into APP. Accounts with users make the
  // server close a connection that has not sent CONNECT within its auth timeout (2 s by default):
  // a shard whose thousands of agents reconnect at once answers its INFO late, where a device
  // answers its own at once, so the bench gives it AUTH_TIMEOUT_SECONDS.
  const server: NatsServerHandle = await startNatsServer({
    configLines: [
      `http: "127.0.0.1:${monitorPort}"`,
      "max_connections: 1000000",
      `log_file: "${join(logDir, "nats-server.log")}"`,
      ...APP_AND_SYSTEM_ACCOUNTS,
      "no_auth_user: app",
      `authorization { timeout: ${AUTH_TIMEOUT_SECONDS} }`,
    ],
    // A restart recovers every JetStream asset before the port opens: minutes, with tens of thousands.
    startTimeoutMs: phaseSeconds * 1000,
  });
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const root = await mkdtemp(join(environment.dataRoot, "edge-agent-fleet-"));
  // Back soon after a restart, whatever its length: the platform's subscriptions count statuses.
  const operator: NatsConnection = await connect({
    servers: server.url,
    name: "bench-operator",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  const advisories = await ApiLimitAdvisories.open(server.url, "sys", "sys");
  const result: Record<string, unknown> = { agents };
  const loadAverage: Record<string, number[]> = { start: oneDecimal(loadavg()) };
  result.loadAverage = loadAverage;
  const shards: Shard[] = [];
  const connectedAt = new Map<string, number>();
  let reconnectedAt = new Map<string, number>();
  const appliedAt = new Map<string, number>();
  const installedAt = new Map<string, number>();
  const downloadingAt = new Map<string, number>();
  const installingAt = new Map<string, number>();
  let configRevision = -1;
  const onEvents = (events: readonly FleetEvent[]): void => {
    for (const event of events) {
      if (event.type === "connected" && !connectedAt.has(event.machineId)) connectedAt.set(event.machineId, event.atMs);
      else if (event.type === "reconnected") reconnectedAt.set(event.machineId, event.atMs);
    }
  };
  const fleetSummary = (): Promise<FleetSummary> => fleetSummaryOf(shards);
  /** Waits until every agent has read all its command feeds since it last (re)connected; the latest of those reads. */
  const untilFeedsRead = async (what: string): Promise<FleetSummary> => {
    let summary = await fleetSummary();
    await until(
      what,
      phaseSeconds,
      async () => {
        summary = await fleetSummary();
        return summary.feedsRead === agents;
      },
      () =>
        `${summary.feedsRead} of ${agents} read their feeds; ${summary.agentsWithCommandProblems} say a feed cannot be read`,
      500,
    );
    return summary;
  };
  /** JetStream API requests and limit advisories from a mark on (the API counters restart with the server process). */
  const jetStreamMark = async (): Promise<{
    apiTotal: number;
    apiErrors: number;
    advisories: ReturnType<ApiLimitAdvisories["total"]>;
  }> => {
    const figures = await readJsz(monitorUrl);
    return { apiTotal: figures.apiTotal, apiErrors: figures.apiErrors, advisories: advisories.total() };
  };
  const jetStreamSince = async (mark: Awaited<ReturnType<typeof jetStreamMark>>): Promise<Record<string, number>> => {
    const figures = await readJsz(monitorUrl);
    const since = advisories.since(mark.advisories);
    return {
      apiRequests: figures.apiTotal - mark.apiTotal,
      apiErrors: figures.apiErrors - mark.apiErrors,
      apiLimitAdvisories: since.advisories,
      apiRequestsDropped: since.droppedRequests,
      consumersNow: figures.consumers,
    };
  };
  let phase = "setup";
  const runStartedMs = performance.now();
  /** One line per phase on stderr: a run of many minutes says where it is. */
  const enter = (next: string): void => {
    phase = next;
    console.error(
      JSON.stringify({
        agents,
        phase,
        atSeconds: Math.round((performance.now() - runStartedMs) / 1000),
        loadavg: loadavg()[0],
      }),
    );
  };
  try {
    await createPlatformStreams(operator);
    await new Kvm(operator).create(AGENT_CONFIG_BUCKET, { history: 10 });
    const manager = await jetstreamManager(operator);
    // What the platform sees: every status an agent reports reaches these subscriptions.
    operator.subscribe("machine.*.config.status", {
      callback: (_error, message) => {
        const body = message.json<{ revision: number; status: string }>();
        if (body.revision === configRevision && body.status === "APPLIED")
          appliedAt.set(message.subject.split(".")[1] as string, Date.now());
      },
    });
    operator.subscribe("machine.*.tool-installation.status", {
      callback: (_error, message) => {
        const body = message.json<{ toolAgentId: string; state: string; connection?: string | null }>();
        // A liveness report (connection set) is no step of the install.
        if (body.toolAgentId !== TOOL_ID || body.connection) return;
        const machineId = message.subject.split(".")[1] as string;
        if (body.state === "INSTALLED") installedAt.set(machineId, Date.now());
        else if (body.state === "INSTALLING") installingAt.set(machineId, Date.now());
        else if (body.state === "DOWNLOADING") downloadingAt.set(machineId, Date.now());
      },
    });
    await operator.flush();
    const serverBaseline = procStat(server.pid as number);
    const startMark = await jetStreamMark();

    enter("connect");
    const shardCount = Math.ceil(agents / environment.agentsPerShard);
    const startedAtMs = Date.now();
    for (let index = 0; index < shardCount; index++) {
      const firstIndex = index * environment.agentsPerShard;
      const count = Math.min(environment.agentsPerShard, agents - firstIndex);
      const startConcurrency = Math.max(1, Math.floor(environment.startConcurrency / shardCount));
      shards.push(
        startShard({ type: "start", count, firstIndex, server: server.url, dataDir: root, startConcurrency }, onEvents),
      );
    }
    result.shards = shardCount;
    const shardBaselineKiB = await (async () => {
      // Each shard's memory before its agents: Node, the sources and the libraries.
      await sleep(300);
      return shards.reduce((sum, shard) => sum + procStat(shard.child.pid as number).rssKiB, 0);
    })();
    await withDeadline(
      Promise.all(shards.map((shard) => shard.started)),
      "starting every agent",
      phaseSeconds,
      () => `${connectedAt.size} of ${agents} connected`,
    );
    await until(
      "every agent connected",
      phaseSeconds,
      () => connectedAt.size === agents,
      () => `${connectedAt.size} of ${agents}`,
    );
    const connectTimes = [...connectedAt.values()].map((at) => at - startedAtMs);
    result.connect = {
      allConnectedMs: Math.max(...connectTimes),
      sinceStartMs: quantiles(connectTimes),
      agentsPerSecond: Math.round(agents / (Math.max(...connectTimes) / 1000)),
    };
    loadAverage.connected = oneDecimal(loadavg());

    enter("feeds read");
    const firstRead = await untilFeedsRead("every agent read its command feeds");
    result.feedsRead = {
      // The latest first read of the fleet (an upper bound: a later check of an agent counts too).
      allReadMs: (firstRead.feedsReadLatestAtMs ?? Date.now()) - startedAtMs,
      ...(await jetStreamSince(startMark)),
    };

    enter("idle");
    // Start-up work (first reads, first events) over: what follows is the steady state.
    await sleep(5_000);
    const shardPids = shards.map((shard) => shard.child.pid as number);
    const idleMark = await jetStreamMark();
    const consumersOnlineAtStart = (await manager.getAccountInfo()).consumers;
    const idleBefore = {
      server: procStat(server.pid as number),
      shards: shardPids.map(procStat),
      machine: readMachineCpuTicks(),
    };
    await sleep(idleSeconds * 1000);
    const idleAfter = {
      server: procStat(server.pid as number),
      shards: shardPids.map(procStat),
      machine: readMachineCpuTicks(),
    };
    const consumersOnlineAtEnd = (await manager.getAccountInfo()).consumers;
    loadAverage.idle = oneDecimal(loadavg());
    const fleetRssKiB = idleAfter.shards.reduce((sum, stat) => sum + stat.rssKiB, 0);
    const dataKiB = Number(execFileSync("du", ["-sk", root], { encoding: "utf8" }).split("\t")[0]);
    const cpuPercent = (ticks: number): number => Number(((ticks / TICKS_PER_SECOND / idleSeconds) * 100).toFixed(2));
    const serverIdleCpu = cpuPercent(idleAfter.server.ticks - idleBefore.server.ticks);
    const fleetIdleTicks =
      idleAfter.shards.reduce((sum, stat) => sum + stat.ticks, 0) -
      idleBefore.shards.reduce((sum, stat) => sum + stat.ticks, 0);
    const fleetIdleCpu = cpuPercent(fleetIdleTicks);
    // Everything else on the machine meanwhile (other developers' work, this driver): how disturbed the figures are.
    const othersIdleCpu = cpuPercent(
      idleAfter.machine.busy -
        idleBefore.machine.busy -
        (idleAfter.server.ticks - idleBefore.server.ticks) -
        fleetIdleTicks,
    );
    const perThousand = (value: number): number => Number(((value * 1000) / agents).toFixed(2));
    result.memory = {
      fleetRssKiB,
      shardsBaselineRssKiB: shardBaselineKiB,
      perAgentKiB: Math.round((fleetRssKiB - shardBaselineKiB) / agents),
      dataDirKiBPerAgent: Number((dataKiB / agents).toFixed(1)),
    };
    result.idle = {
      seconds: idleSeconds,
      server: {
        rssKiB: idleAfter.server.rssKiB,
        rssKiBBeforeAgents: serverBaseline.rssKiB,
        rssKiBPer1000Agents: Math.round(((idleAfter.server.rssKiB - serverBaseline.rssKiB) * 1000) / agents),
        cpuPercent: serverIdleCpu,
        cpuPercentPer1000Agents: perThousand(serverIdleCpu),
        // JetStream consumers on the server with every agent online and idle (account info), at the idle's start and end.
        consumersOnline: [consumersOnlineAtStart, consumersOnlineAtEnd],
      },
      fleet: { cpuPercent: fleetIdleCpu, cpuPercentPer1000Agents: perThousand(fleetIdleCpu) },
      othersOnTheMachineCpuPercent: othersIdleCpu,
      jetStream: await jetStreamSince(idleMark),
    };

    /** CPU seconds the fleet's shards and the server spent from `before` to now (the server's own since its start when it restarted). */
    const cpuSince = (before: {
      shards: number;
      server: number;
    }): { fleetCpuSeconds: number; serverCpuSeconds: number } => ({
      fleetCpuSeconds: Number(
        ((shardPids.reduce((sum, pid) => sum + procStat(pid).ticks, 0) - before.shards) / TICKS_PER_SECOND).toFixed(2),
      ),
      serverCpuSeconds: Number(((procStat(server.pid as number).ticks - before.server) / TICKS_PER_SECOND).toFixed(2)),
    });
    const cpuNow = (): { shards: number; server: number } => ({
      shards: shardPids.reduce((sum, pid) => sum + procStat(pid).ticks, 0),
      server: procStat(server.pid as number).ticks,
    });

    enter("config fan-out");
    const fanOutCpu = cpuNow();
    const fanOutMark = await jetStreamMark();
    const putAtMs = Date.now();
    configRevision = await new Kvm(operator)
      .open(AGENT_CONFIG_BUCKET)
      .then((kv) => kv.put(CONFIG_DEFAULTS_KEY, JSON.stringify({ heartbeatSeconds: 59 })));
    await until(
      "every agent reported APPLIED",
      phaseSeconds,
      () => appliedAt.size === agents,
      () => `${appliedAt.size} of ${agents}`,
    );
    const applyTimes = [...appliedAt.values()].map((at) => at - putAtMs);
    // CPU beside the time: a fleet in one process applies one agent at a time, each device would apply alone.
    result.configFanOut = {
      revision: configRevision,
      allAppliedMs: Math.max(...applyTimes),
      perAgentMs: quantiles(applyTimes),
      ...cpuSince(fanOutCpu),
      jetStream: await jetStreamSince(fanOutMark),
    };
    loadAverage.fanOut = oneDecimal(loadavg());

    enter("reconnect storm");
    reconnectedAt = new Map();
    const stormFleetTicks = cpuNow().shards;
    // The new server process counts its API requests from 0.
    const stormMark = { apiTotal: 0, apiErrors: 0, advisories: advisories.total() };
    const peaks = sampleJetStreamPeaks(monitorUrl);
    const stormStartMs = Date.now();
    await server.restart();
    const serverUpMs = Date.now();
    await until(
      "every agent reconnected",
      phaseSeconds,
      () => reconnectedAt.size === agents,
      () => `${reconnectedAt.size} of ${agents}`,
    );
    const allBackMs = Math.max(...reconnectedAt.values());
    // Back, drained AND its feeds read again: each condition's first poll that saw it hold, for the whole fleet.
    let summary = await fleetSummary();
    let drainedMs: number | null = null;
    let feedsReadMs: number | null = null;
    await until(
      "every outbox drained and every agent's feeds read again",
      phaseSeconds,
      async () => {
        summary = await fleetSummary();
        if (drainedMs === null && summary.outboxPending === 0) drainedMs = Date.now();
        if (feedsReadMs === null && summary.feedsRead === agents)
          feedsReadMs = summary.feedsReadLatestAtMs ?? Date.now();
        return drainedMs !== null && feedsReadMs !== null;
      },
      () =>
        `${summary.agentsWithPending} agents still hold ${summary.outboxPending} events; ${summary.feedsRead} of ${agents} read their feeds`,
      500,
    );
    const readyMs = Math.max(allBackMs, drainedMs ?? 0, feedsReadMs ?? 0);
    const stormServer = procStat(server.pid as number);
    const stormPeaks = await peaks.stop();
    const sinceUp = [...reconnectedAt.values()].map((at) => at - serverUpMs);
    result.reconnectStorm = {
      serverRestartMs: serverUpMs - stormStartMs,
      allReconnectedAfterRestartMs: allBackMs - stormStartMs,
      allDrainedAfterRestartMs: (drainedMs ?? readyMs) - stormStartMs,
      allFeedsReadAfterRestartMs: (feedsReadMs ?? readyMs) - stormStartMs,
      allBackDrainedAndReadAfterRestartMs: readyMs - stormStartMs,
      reconnectAfterServerUpMs: quantiles(sinceUp),
      reconnectsPerSecondAfterServerUp: perSecond(sinceUp),
      // The new server process's CPU from its start until the fleet was back, drained and read.
      server: {
        cpuSeconds: Number((stormServer.ticks / TICKS_PER_SECOND).toFixed(2)),
        cpuPercentOverStorm: Number(
          ((stormServer.ticks / TICKS_PER_SECOND / (Math.max(1, readyMs - serverUpMs) / 1000)) * 100).toFixed(1),
        ),
        rssKiB: stormServer.rssKiB,
      },
      fleetCpuSeconds: cpuSince({ shards: stormFleetTicks, server: 0 }).fleetCpuSeconds,
      jetStream: {
        ...(await jetStreamSince(stormMark)),
        apiInflightMax: stormPeaks.apiInflightMax,
        consumersMax: stormPeaks.consumersMax,
        jszSamples: stormPeaks.samples,
      },
      // Connections the restarted server closed before the fleet was back: dials that failed after it was up.
      closedConnections: await closedConnectionReasons(monitorUrl).catch((error: unknown) => String(error)),
    };
    loadAverage.storm = oneDecimal(loadavg());

    if (environment.skipToolInstall) {
      result.toolInstall = { skipped: environment.skipToolInstall };
      enter("done");
      return result;
    }
    enter("tool install");
    const archive = await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } });
    const store = await new Objm(operator).create("tools");
    await store.putBlob({ name: `${TOOL_ID}.zip` }, new Uint8Array(archive));
    const command = JSON.stringify({
      toolAgentId: TOOL_ID,
      toolId: `${TOOL_ID}-id`,
      toolType: "BENCH",
      version: "1.0.0",
      downloadConfigurations: [
        {
          os: "linux",
          fileName: `${TOOL_ID}.zip`,
          agentFileName: "bin/tool.sh",
          link: `nats-obj://tools/${TOOL_ID}.zip`,
          sha256: createHash("sha256").update(archive).digest("hex"),
          size: archive.length,
          installationType: "STANDARD",
        },
      ],
      assets: [],
      installationCommandArgs: ["install", "1.0.0"],
      toolAgentIdCommandArgs: ["id"],
      uninstallationCommandArgs: [],
      reinstall: false,
    });
    const js = jetstream(operator);
    const installMark = await jetStreamMark();
    const publishStartMs = Date.now();
    // Published as the platform would, one command per machine, a bounded number in flight.
    let nextIndex = 0;
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (nextIndex < agents) {
          const index = nextIndex++;
          await js.publish(`machine.${simulatedMachineId(index)}.tool-installation`, command);
        }
      }),
    );
    const publishedMs = Date.now() - publishStartMs;
    await until(
      "every agent reported INSTALLED",
      phaseSeconds,
      () => installedAt.size === agents,
      () => `${installedAt.size} of ${agents}`,
    );
    const installTimes = [...installedAt.values()].map((at) => at - publishStartMs);
    const between = (from: Map<string, number>, to: Map<string, number>): number[] =>
      [...to].flatMap(([machineId, at]) => (from.has(machineId) ? [at - (from.get(machineId) as number)] : []));
    result.toolInstall = {
      link: "nats-obj (object store)",
      archiveBytes: archive.length,
      publishAllMs: publishedMs,
      allInstalledMs: Math.max(...installTimes),
      perAgentMs: quantiles(installTimes),
      // Where the time goes: publish to DOWNLOADING (delivery), DOWNLOADING to INSTALLING (download, unpack), INSTALLING to INSTALLED (install command, checks).
      commandToDownloadingMs: quantiles([...downloadingAt.values()].map((at) => at - publishStartMs)),
      downloadingToInstallingMs: quantiles(between(downloadingAt, installingAt)),
      installingToInstalledMs: quantiles(between(installingAt, installedAt)),
      jetStream: await jetStreamSince(installMark),
    };
    enter("done");
  } catch (error) {
    const serverNow = server.pid === undefined ? null : procStat(server.pid);
    result.failed = {
      phase,
      reason: error instanceof Error ? error.message : String(error),
      serverRssKiB: serverNow?.rssKiB ?? null,
    };
  } finally {
    const stopStartedMs = Date.now();
    for (const shard of shards) shard.stop();
    const allStopped = Promise.all(shards.map((shard) => shard.stopped));
    try {
      await withDeadline(allStopped, "stopping the fleet", 180, () => "shards still running");
      result.stopAllMs = Date.now() - stopStartedMs;
    } catch (error) {
      for (const shard of shards) shard.child.kill("SIGKILL");
      result.stopNote = `${(error as Error).message}: killed`;
    }
    result.afterStop = await consumersAfterStop(operator).catch((error: unknown) => ({
      error: error instanceof Error ? error.message : String(error),
    }));
    result.apiLimitAdvisoriesWholeRun = advisories.total();
    loadAverage.end = oneDecimal(loadavg());
    await advisories.close().catch(() => undefined);
    await operator.close().catch(() => undefined);
    await server.dispose();
    const serverLog = await readFile(join(logDir, "nats-server.log"), "utf8").catch(() => "");
    if (environment.keepServerLogDir)
      await writeFile(join(environment.keepServerLogDir, `nats-server-${agents}.log`), serverLog);
    result.serverWarnings = serverWarnings(serverLog);
    // The reconnect storm's restart as the server itself logged it.
    result.serverRestart = restartTimeline(serverLog);
    await rm(root, { recursive: true, force: true });
    await rm(logDir, { recursive: true, force: true });
  }
  return result;
}

export async function run(): Promise<Record<string, unknown>> {
  const sizes = (process.env.BENCH_FLEET_SIZES ?? "1000,5000,10000,20000").split(",").map(Number);
  const dataRoot = process.env.BENCH_FLEET_DATA_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : tmpdir());
  const limits = openFileLimits();
  let environment: Environment = {
    dataRoot,
    idleSeconds: Number(process.env.BENCH_FLEET_IDLE_SECONDS ?? 30),
    phaseSeconds: Number(process.env.BENCH_FLEET_PHASE_SECONDS ?? 900),
    startConcurrency: Number(process.env.BENCH_FLEET_START_CONCURRENCY ?? 100),
    agentsPerShard: Math.floor((limits.soft - FD_RESERVE) / FDS_PER_AGENT),
    skipToolInstall: null,
    keepServerLogDir: process.env.BENCH_FLEET_KEEP_SERVER_LOG ?? null,
  };
  const toolMaxAgents = Number(process.env.BENCH_FLEET_TOOL_MAX_AGENTS ?? 1000);
  const natsVersion = execFileSync(await ensureNatsServer(), ["--version"], { encoding: "utf8" }).trim();
  const runs: Array<Record<string, unknown>> = [];
  let stopReason: string | null = null;
  for (const agents of sizes) {
    if (stopReason) {
      runs.push({ agents, skipped: stopReason });
      continue;
    }
    // nats-server holds one descriptor per client connection and inherits this process's limit: past
    // it, it refuses connections ("accept4: too many open files") and the fleet never finishes connecting.
    if (agents + SERVER_FD_RESERVE > limits.hard) {
      runs.push({
        agents,
        skipped: `nats-server would need ${agents + SERVER_FD_RESERVE} file descriptors (a connection each, plus ${SERVER_FD_RESERVE} of its own); this machine's limit is ${limits.hard} (hard: raising it needs CAP_SYS_RESOURCE)`,
      });
      stopReason = "a smaller fleet already needs more file descriptors than nats-server may open here";
      continue;
    }
    // Memory the last size needed per agent (fleet, server and data dir), scaled up, must be free now.
    const last = runs.at(-1) as
      | {
          agents: number;
          memory?: { fleetRssKiB: number; dataDirKiBPerAgent: number };
          idle?: { server: { rssKiB: number } };
        }
      | undefined;
    if (last?.memory && last.idle) {
      const perAgentKiB =
        (last.memory.fleetRssKiB + last.idle.server.rssKiB) / last.agents +
        (dataRoot === "/dev/shm" ? last.memory.dataDirKiBPerAgent : 0);
      const neededKiB = Math.round(perAgentKiB * agents * 1.25);
      const availableKiB = memAvailableKiB() - MEMORY_RESERVE_KIB;
      if (neededKiB > availableKiB) {
        runs.push({
          agents,
          skipped: `would need about ${Math.round(neededKiB / 1024)} MiB (from ${last.agents} agents, +25%); ${Math.round(availableKiB / 1024)} MiB available`,
        });
        stopReason = `a smaller fleet already would not fit in memory`;
        continue;
      }
    }
    const began = performance.now();
    const toolLimit =
      agents > toolMaxAgents
        ? `more than BENCH_FLEET_TOOL_MAX_AGENTS=${toolMaxAgents} agents: every simulated install runs its commands and scans /proc from one process`
        : null;
    const figures = await runSize(agents, {
      ...environment,
      skipToolInstall: environment.skipToolInstall ?? toolLimit,
    });
    runs.push({ ...figures, wallSeconds: Math.round((performance.now() - began) / 1000) });
    console.error(JSON.stringify(runs.at(-1)));
    const failed = figures.failed as { phase: string; reason: string } | undefined;
    // The tool install comes last: a fleet too slow at it is still measured at the rest when larger.
    if (failed?.phase === "tool install")
      environment = { ...environment, skipToolInstall: `${agents} agents did not finish it: ${failed.reason}` };
    else if (failed) stopReason = `${agents} agents failed in phase "${failed.phase}": ${failed.reason}`;
  }
  return {
    machine: {
      cpus: cpus().length,
      memTotalKiB: Number(/^MemTotal:\s+(\d+) kB/m.exec(await readFile("/proc/meminfo", "utf8"))?.[1] ?? 0),
      loadAverageAtStart: loadavg().map((value) => Number(value.toFixed(2))),
      openFiles: limits,
      note: "2 cores shared with other workers during the run: CPU figures are upper bounds, times include their load",
    },
    natsServer: natsVersion,
    // Accounts APP (agents, operator; no_auth_user) and SYS (the advisories); the auth timeout raised (runSize says why).
    serverAuthTimeoutSeconds: AUTH_TIMEOUT_SECONDS,
    dataRoot,
    agentsPerShard: environment.agentsPerShard,
    phaseSeconds: environment.phaseSeconds,
    runs,
  };
}
