import { execFile } from "node:child_process";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { Svcm } from "@nats-io/services";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { EVENT_STREAMS } from "../src/bridge/bridge.ts";
import { BRIDGE_SERVICE_NAME, type BridgeStatus } from "../src/bridge/service/bridge-status.ts";
import { type BridgeProcess, startBridgeProcess } from "../test/helpers/bridge-process.ts";
import { startKafkaBroker } from "../test/helpers/kafka-broker.ts";
import { type NatsServerHandle, startNatsServer } from "../test/helpers/nats-server.ts";
import { preload, rawPullConsume } from "./bridge.ts";
import { CLOCK_TICKS_PER_SECOND, readCpuTicks, readMachineCpuTicks } from "./proc-stats.ts";

/**
 * A partitioned TELEMETRY shared by bridge instances (DESIGN, "Partitioned telemetry"): the same
 * preloaded realistic load (bench/bridge.ts's preload: mostly telemetry) bridged by one instance,
 * then by two, each run a group of its own reading the same streams from their start.
 *
 * BENCH_PARTITIONS_EVENTS (default 200,000) events from BENCH_PARTITIONS_MACHINES (200) machines,
 * TELEMETRY in BENCH_PARTITIONS_COUNT (4) partitions. Each group first shares its shards out on the
 * empty streams and is killed; after the preload its instances come back to the shards they held
 * (their leases outlive them), all started while nats-server is down and connecting when it is back.
 * Throughput, the same way for both runs: every event over the time from nats-server back (the
 * group's start: connecting, taking its shards over) to the moment every shard has caught up
 * (`twoToOne`); also, the events committed between the first status that shows every shard of the
 * group running and that end (`twoToOneOnceAllShardsRan`; the status is slow to answer while the
 * bridges start on a loaded machine, so that window starts late). Goal (issue 22): two instances >= 1.6 x one. The machine's load average is
 * reported: on a shared 2-core machine, two bridges compete with NATS, Kafka and other work.
 */
export const name = "bridge-partitions";

const run_ = promisify(execFile);
const SHARED_TIMEOUT_MS = 15 * 60_000;

interface RunResult {
  readonly instances: number;
  /** The headline: every event over the time from nats-server back (the group connects) to the last shard caught up. */
  readonly eventsPerSecondFromStart: number;
  readonly secondsFromStart: number;
  /** CPU the group's bridges used, in cores, over that time; and the whole machine's busy cores (of all it has). */
  readonly bridgesCoresUsed: number;
  readonly machineCoresBusy: number;
  readonly machineCores: number;
  readonly eventsMeasured: number;
  /** Committed before every shard ran (outside the measurement). */
  readonly eventsBeforeWindow: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  /** Partition shards each instance ran while measured. */
  readonly partitionsPerInstance: readonly number[];
  readonly transactionsCommitted: number;
  readonly loadAverageDuring: number;
}

async function statusesOf(connection: NatsConnection, group: string, instances: number): Promise<BridgeStatus[]> {
  const replies = await new Svcm(connection)
    .client({ strategy: "count", maxMessages: instances, maxWait: 2_000 })
    .stats(BRIDGE_SERVICE_NAME);
  const statuses: BridgeStatus[] = [];
  for await (const reply of replies) {
    const data = reply.endpoints?.[0]?.data as BridgeStatus | undefined;
    if (data?.group === group) statuses.push(data);
  }
  return statuses;
}

/** Every event committed by the group's shards, wherever they ran (a shard handed over keeps its counts where it ran). */
const committedOf = (statuses: readonly BridgeStatus[]): number =>
  statuses.reduce(
    (total, status) => total + status.shards.reduce((sum, shard) => sum + shard.produced + shard.deadLetters, 0),
    0,
  );

/** CPU seconds the bridges used so far, and the machine's busy and total CPU seconds. */
function cpuOf(bridges: readonly BridgeProcess[]): { bridges: number; machineBusy: number; machineTotal: number } {
  const machine = readMachineCpuTicks();
  const ticks = bridges.reduce((total, bridge) => total + readCpuTicks(bridge.child.pid as number), 0);
  return {
    bridges: ticks / CLOCK_TICKS_PER_SECOND,
    machineBusy: machine.busy / CLOCK_TICKS_PER_SECOND,
    machineTotal: machine.total / CLOCK_TICKS_PER_SECOND,
  };
}

const isPartition = (shard: string): boolean => /^TELEMETRY-p\d+-of-\d+$/.test(shard);

interface GroupOptions {
  readonly natsUrl: string;
  readonly bootstrap: string;
  readonly instances: number;
  readonly events: number;
  readonly partitions: number;
}

const groupOf = (instances: number): string => `bench-${instances}`;

function startGroup(options: GroupOptions): Promise<BridgeProcess[]> {
  const group = groupOf(options.instances);
  return Promise.all(
    Array.from({ length: options.instances }, (_, index) =>
      startBridgeProcess({
        EDGE_BRIDGE_NATS_URL: options.natsUrl,
        EDGE_BRIDGE_KAFKA_BROKERS: options.bootstrap,
        EDGE_BRIDGE_GROUP: group,
        EDGE_BRIDGE_TOPIC_CHECKPOINT: `${group}-checkpoints`,
        EDGE_BRIDGE_INSTANCE_ID: `${group}-${index}`,
        // Longer than the preload and the other group's run: the leases a killed instance held
        // are still its own when it comes back, and it takes them back at once (shard-leases.ts).
        EDGE_BRIDGE_LEASE_SECONDS: "600",
        MALLOC_ARENA_MAX: "2",
      }),
    ),
  );
}

/** Waits until `check` says yes of the group's statuses (bounded), failing if a bridge exits. */
async function waitForGroup(
  connection: NatsConnection,
  bridges: readonly BridgeProcess[],
  options: GroupOptions,
  what: string,
  check: (statuses: readonly BridgeStatus[], now: number) => boolean,
): Promise<void> {
  const deadline = Date.now() + SHARED_TIMEOUT_MS;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${options.instances} instance(s): ${what} not within 15 minutes`);
    for (const bridge of bridges)
      if (bridge.child.exitCode !== null) throw new Error(`a bridge exited:\n${bridge.output().slice(-3_000)}`);
    const statuses = await statusesOf(connection, groupOf(options.instances), options.instances).catch(() => []);
    if (check(statuses, performance.now())) return;
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

/** The group's shards that run, and each instance's partitions. */
function shape(statuses: readonly BridgeStatus[]) {
  const running = statuses.flatMap((status) =>
    status.shards.filter((shard) => status.shardsHeld.includes(shard.shard) && shard.state === "running"),
  );
  return { running, partitions: statuses.map((status) => status.shardsHeld.filter(isPartition).length) };
}

const settled = (options: GroupOptions, statuses: readonly BridgeStatus[]): boolean => {
  const { running, partitions } = shape(statuses);
  return (
    statuses.length === options.instances &&
    running.length === EVENT_STREAMS.length + options.partitions + 1 &&
    partitions.every((held) => held >= Math.floor(options.partitions / options.instances))
  );
};

/**
 * Before the load: the group's instances share the shards out (on the empty streams), then are
 * killed (kill -9), so that after the preload each comes back to the shards it held. The
 * measurement then sees the load shared from its first event, not the leases settling.
 */
async function settleGroup(connection: NatsConnection, options: GroupOptions): Promise<void> {
  const bridges = await startGroup(options);
  try {
    await waitForGroup(connection, bridges, options, "the shards shared out", (statuses) => settled(options, statuses));
  } finally {
    await Promise.all(bridges.map((bridge) => bridge.stop("SIGKILL")));
    await Promise.all(bridges.map((bridge) => bridge.dispose()));
  }
}

/**
 * The group back on the preloaded streams, measured until every shard caught up. Its instances are started while nats-server is down and all connect when it is back, so no
 * instance bridges much of the load before the others run (a process starts in seconds here).
 */
async function measureGroup(
  connection: NatsConnection,
  nats: NatsServerHandle,
  options: GroupOptions,
): Promise<RunResult> {
  await nats.stop();
  const bridges = await startGroup(options);
  try {
    const deadline = Date.now() + 120_000;
    while (!bridges.every((bridge) => bridge.output().includes("edge-bridge starting"))) {
      if (Date.now() > deadline) throw new Error("the bridges did not start within 2 minutes");
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
    await nats.start();
    const startedAt = performance.now();
    const cpuAtStart = cpuOf(bridges);
    // Set from the status polls below.
    const measured: {
      start: { at: number; committed: number; partitions: readonly number[] } | null;
      end: { at: number; committed: number; transactions: number } | null;
    } = { start: null, end: null };
    const loadAverages: number[] = [];
    await waitForGroup(connection, bridges, options, "the load bridged", (statuses, now) => {
      const { running, partitions } = shape(statuses);
      const committed = committedOf(statuses);
      if (measured.start === null && settled(options, statuses)) measured.start = { at: now, committed, partitions };
      if (measured.start !== null) loadAverages.push(loadavg()[0] ?? 0);
      const caughtUp =
        measured.start !== null &&
        running.length === EVENT_STREAMS.length + options.partitions + 1 &&
        running.every((shard) => shard.streams.every((stream) => stream.lag === 0)) &&
        committed >= options.events;
      if (caughtUp)
        measured.end = {
          at: now,
          committed,
          transactions: statuses.reduce(
            (total, status) => total + status.shards.reduce((sum, shard) => sum + shard.transactionsCommitted, 0),
            0,
          ),
        };
      return caughtUp;
    });
    const { start: began, end: ended } = measured;
    if (began === null || ended === null) throw new Error("the load was bridged before every shard ran");
    const secondsFromStart = (ended.at - startedAt) / 1_000;
    const cpuAtEnd = cpuOf(bridges);
    const cores = (busy: number): number => Number((busy / secondsFromStart).toFixed(2));
    const seconds = (ended.at - began.at) / 1_000;
    const eventsMeasured = ended.committed - began.committed;
    return {
      instances: options.instances,
      eventsPerSecondFromStart: Math.round(ended.committed / secondsFromStart),
      secondsFromStart: Number(secondsFromStart.toFixed(2)),
      bridgesCoresUsed: cores(cpuAtEnd.bridges - cpuAtStart.bridges),
      machineCoresBusy: cores(cpuAtEnd.machineBusy - cpuAtStart.machineBusy),
      machineCores: Math.round(cores(cpuAtEnd.machineTotal - cpuAtStart.machineTotal)),
      eventsMeasured,
      eventsBeforeWindow: began.committed,
      seconds: Number(seconds.toFixed(2)),
      eventsPerSecond: Math.round(eventsMeasured / seconds),
      partitionsPerInstance: began.partitions,
      transactionsCommitted: ended.transactions,
      loadAverageDuring: Number(
        (loadAverages.reduce((total, value) => total + value, 0) / Math.max(1, loadAverages.length)).toFixed(2),
      ),
    };
  } finally {
    await Promise.all(bridges.map((bridge) => bridge.dispose()));
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const events = Number(process.env.BENCH_PARTITIONS_EVENTS ?? 200_000);
  const machines = Number(process.env.BENCH_PARTITIONS_MACHINES ?? 200);
  const partitions = Number(process.env.BENCH_PARTITIONS_COUNT ?? 4);
  const loadAverageBefore = loadavg().map((value) => Number(value.toFixed(2)));
  const [nats, kafka] = await Promise.all([
    startNatsServer(),
    startKafkaBroker({ properties: { "log.retention.bytes": "-1" } }),
  ]);
  // Reconnects for good: each run stops nats-server while its bridges start.
  const connection = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  try {
    await run_(
      process.execPath,
      [resolve(import.meta.dirname, "../src/cli/main.ts"), "dev-setup", "--telemetry-partitions", String(partitions)],
      { env: { ...process.env, EDGE_AGENT_NATS_URL: nats.url } },
    );
    const manager = await jetstreamManager(connection);
    for (const stream of EVENT_STREAMS) await manager.streams.update(stream, { max_bytes: -1, max_msgs: -1 });
    const common = { natsUrl: nats.url, bootstrap: kafka.bootstrap, events, partitions };
    await settleGroup(connection, { ...common, instances: 1 });
    await settleGroup(connection, { ...common, instances: 2 });
    await preload(connection, events, machines);
    const telemetry = (await manager.streams.info("TELEMETRY")).state.messages;
    // The server's caches warm before either run reads.
    await rawPullConsume(connection, false);

    const one = await measureGroup(connection, nats, { ...common, instances: 1 });
    const two = await measureGroup(connection, nats, { ...common, instances: 2 });
    return {
      events,
      machines,
      partitions,
      telemetryEvents: telemetry,
      oneInstance: one,
      twoInstances: two,
      twoToOne: Number((two.eventsPerSecondFromStart / one.eventsPerSecondFromStart).toFixed(2)),
      twoToOneOnceAllShardsRan: Number((two.eventsPerSecond / one.eventsPerSecond).toFixed(2)),
      goal: 1.6,
      loadAverageBefore,
      loadAverageAfter: loadavg().map((value) => Number(value.toFixed(2))),
    };
  } finally {
    await connection.close().catch(() => undefined);
    await kafka.dispose();
    await nats.dispose();
  }
}
