import type { NatsConnection } from "@nats-io/transport-node";
import type { AgentStatus } from "../agent/index.ts";
import { type Agent, createAgent } from "../agent/index.ts";
import { EdgeError } from "../errors/index.ts";
import { type Cancel, type Clock, type Logger, silentLogger, systemClock, timersOf } from "../runtime/index.ts";
import { defaultSettings, type Settings } from "../settings/index.ts";
import type { LinkTuning } from "../transport/index.ts";
import { type ConnectionFactory, defaultConnectionFactory } from "../transport/index.ts";
import { type FleetSummary, summarizeFleet } from "./fleet-summary.ts";
import { simulatedAgentSettings, simulatedMachineId } from "./simulated-identity.ts";

/** What a fleet reports as it happens; `atMs` is the wall clock (epoch ms), comparable across processes. */
export type FleetEvent =
  /** The agent is started (connected or still trying); its start slot now waits for its first connect. */
  | { readonly type: "started"; readonly machineId: string; readonly atMs: number }
  | { readonly type: "connected"; readonly machineId: string; readonly atMs: number }
  | { readonly type: "disconnected"; readonly machineId: string; readonly atMs: number }
  | { readonly type: "reconnected"; readonly machineId: string; readonly atMs: number };

export interface FleetOptions {
  /** How many agents. */
  readonly count: number;
  /** The NATS server(s) every agent connects to. */
  readonly server: string | readonly string[];
  /** Each agent keeps its data in `<dataDir>/<machineId>`. */
  readonly dataDir: string;
  /** Index of the first agent (default 0): one shard of a larger fleet starts further on. */
  readonly firstIndex?: number;
  /** Settings every agent starts from (auth, TLS, schedules...); identity and directories are each agent's own. */
  readonly settings?: Settings;
  /** Root logger: each agent logs through a child of its own that carries its machine id (default: silent). */
  readonly logger?: Logger;
  /** What every agent, and the fleet's own pacing (connect wait, stagger), runs on (default: the system clock). */
  readonly clock?: Clock;
  /** Agents starting at once (default 50): each start slot waits for its agent's first connect. */
  readonly startConcurrency?: number;
  /** Pause in a start slot after each agent (default 0 ms): spreads a connect storm further. */
  readonly staggerMs?: number;
  /** Longest a start slot waits for an agent's first connect before starting the next (default 30 s). */
  readonly connectWaitMs?: number;
  /** Agents stopping at once (default 200). */
  readonly stopConcurrency?: number;
  readonly linkTuning?: LinkTuning;
  readonly connectionFactory?: ConnectionFactory;
  readonly onEvent?: (event: FleetEvent) => void;
}

export interface SimulatedAgent {
  readonly index: number;
  readonly machineId: string;
  readonly dataDir: string;
  readonly agent: Agent;
  /** Whether its link is up now (from its connection's own status events). */
  readonly connected: boolean;
  /** When its link last came up, first connect or reconnect (the fleet's clock, epoch ms); null before. */
  readonly connectedAtMs: number | null;
}

export interface Fleet {
  readonly agents: readonly SimulatedAgent[];
  agent(machineId: string): SimulatedAgent | undefined;
  /** Starts every agent, `startConcurrency` at a time; resolves once all are started (connected or still trying). */
  start(): Promise<void>;
  /**
   * Stops starting new agents and stops every started one cleanly (outboxes closed, links drained).
   * A start slot waiting for a connect or a stagger gives up its wait at once.
   */
  stop(timeoutMs?: number): Promise<void>;
  /** Read from each agent's `progress()`: cheap enough to poll a fleet of thousands every second. */
  summary(): FleetSummary;
  status(machineId: string): AgentStatus | undefined;
}

/** An agent of the fleet could not be made or started: nothing else is started, and those started are stopped. */
export class FleetStartError extends EdgeError {
  readonly code = "EDGE_FLEET_START";
  readonly machineId: string;
  readonly started: number;
  constructor(machineId: string, started: number, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`simulated agent ${machineId} could not start after ${started} others did: ${reason}`, { cause });
    this.name = "FleetStartError";
    this.machineId = machineId;
    this.started = started;
  }
}

/** The settings a fleet starts from when none are given: the agent's defaults, pointed at `server`. */
export function fleetSettingsTemplate(
  server: string | readonly string[],
  logLevel: Settings["logLevel"] = "info",
): Settings {
  // The directories are replaced per agent: the platform and home given here never matter.
  return {
    ...defaultSettings("linux", {}, false),
    natsServers: typeof server === "string" ? [server] : [...server],
    logLevel,
    // A simulated fleet stands in for machines of a development platform, which sends unsigned
    // commands; give it settings with a configSigningKey to simulate a signed one.
    allowUnsigned: true,
  };
}

/** Runs `work(index)` for 0..count-1, at most `concurrency` at once; stops taking more after the first failure. */
async function forEachBounded(
  count: number,
  concurrency: number,
  work: (index: number) => Promise<void>,
  halted: () => boolean,
): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const slot = async (): Promise<void> => {
    while (failure === null && !halted() && next < count) {
      const index = next++;
      try {
        await work(index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, slot));
  // Set inside the slots: TypeScript cannot see that, hence the cast.
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/**
 * Many agents in one process, each made by `createAgent` with its own identity (`sim-<index>`),
 * data dir, outbox and NATS connection, all against the same server(s). Telemetry and the status
 * file are off: a simulated machine has no hardware of its own to report.
 */
export function createFleet(options: FleetOptions): Fleet {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  const firstIndex = options.firstIndex ?? 0;
  const servers = typeof options.server === "string" ? [options.server] : [...options.server];
  // An agent takes its settings' log level whenever it applies a configuration: without a logger
  // of their own, the agents stay silent.
  const level = options.logger ? (options.logger.level as Settings["logLevel"]) : "silent";
  const template = { ...(options.settings ?? fleetSettingsTemplate(servers, level)), natsServers: servers };
  const baseFactory = options.connectionFactory ?? defaultConnectionFactory;
  type Entry = SimulatedAgent & { connected: boolean; connectedAtMs: number | null };
  const agents: Entry[] = [];
  const byId = new Map<string, Entry>();
  const firstConnect = new Map<string, () => void>();
  let stopping = false;
  // Ends every start slot's wait (connect wait, stagger) when the fleet stops.
  const halt = new AbortController();
  let starting: Promise<void> | null = null;
  let stopped: Promise<void> | null = null;

  const emit = (event: FleetEvent): void => options.onEvent?.(event);

  /**
   * A start slot's pause: ends after `delayMs` on the fleet's clock, when `until` settles, or when
   * the fleet stops, whichever comes first, and leaves no timer or listener behind.
   */
  const slotPause = (delayMs: number, until?: Promise<void>): Promise<void> =>
    new Promise((resolve) => {
      if (halt.signal.aborted) return resolve();
      let cancelTimer: Cancel = () => undefined;
      const end = (): void => {
        cancelTimer();
        halt.signal.removeEventListener("abort", end);
        resolve();
      };
      halt.signal.addEventListener("abort", end, { once: true });
      cancelTimer = timersOf(clock).after(delayMs, end);
      void until?.then(end);
    });

  /** The agent's own connection factory: the same connection, watched for the fleet's events. */
  const watchedFactory =
    (machineId: string): ConnectionFactory =>
    async (connectionOptions) => {
      const connection = await baseFactory(connectionOptions);
      const atMs = clock.now();
      const entry = byId.get(machineId);
      if (entry) {
        entry.connected = true;
        entry.connectedAtMs = atMs;
      }
      emit({ type: "connected", machineId, atMs });
      firstConnect.get(machineId)?.();
      void followStatus(machineId, connection);
      return connection;
    };

  const followStatus = async (machineId: string, connection: NatsConnection): Promise<void> => {
    for await (const status of connection.status()) {
      const entry = byId.get(machineId);
      if (status.type === "disconnect") {
        if (entry) entry.connected = false;
        emit({ type: "disconnected", machineId, atMs: clock.now() });
      } else if (status.type === "reconnect") {
        const atMs = clock.now();
        if (entry) {
          entry.connected = true;
          entry.connectedAtMs = atMs;
        }
        emit({ type: "reconnected", machineId, atMs });
      }
    }
  };

  const startOne = async (offset: number): Promise<void> => {
    const index = firstIndex + offset;
    const machineId = simulatedMachineId(index);
    const settings = simulatedAgentSettings(template, options.dataDir, index);
    let connectedOnce: () => void = () => undefined;
    const connectedPromise = new Promise<void>((resolve) => (connectedOnce = resolve));
    firstConnect.set(machineId, connectedOnce);
    let agent: Agent;
    try {
      agent = await createAgent(settings, {
        clock,
        logger,
        telemetry: false,
        writeStatusFile: false,
        hostname: () => `${machineId}.simulated`,
        connectionFactory: watchedFactory(machineId),
        ...(options.linkTuning ? { linkTuning: options.linkTuning } : {}),
      });
      const entry: Entry = {
        index,
        machineId,
        dataDir: settings.dataDir,
        agent,
        connected: false,
        connectedAtMs: null,
      };
      agents.push(entry);
      byId.set(machineId, entry);
      await agent.start();
    } catch (error) {
      // Nothing else is started: the other slots stop waiting for theirs.
      halt.abort();
      throw new FleetStartError(machineId, agents.length, error);
    }
    // A bounded connect storm: this slot takes the next agent once this one is in, or after a while.
    const connectWait = slotPause(options.connectWaitMs ?? 30_000, connectedPromise);
    emit({ type: "started", machineId, atMs: clock.now() });
    await connectWait;
    firstConnect.delete(machineId);
    if (options.staggerMs) await slotPause(options.staggerMs);
  };

  /** Once: a failed start has already stopped those it started when `stop` comes. */
  const stopAll = (timeoutMs: number): Promise<void> => {
    stopped ??= (async () => {
      const list = [...agents];
      const stopOne = async (position: number): Promise<void> => {
        const entry = list[position] as SimulatedAgent;
        await entry.agent.stop(timeoutMs).catch((error: unknown) => {
          logger.error({ err: error, machineId: entry.machineId }, "simulated agent did not stop cleanly");
        });
      };
      await forEachBounded(list.length, options.stopConcurrency ?? 200, stopOne, () => false);
    })();
    return stopped;
  };

  return {
    agents,
    agent: (machineId) => byId.get(machineId),
    start() {
      starting ??= forEachBounded(options.count, options.startConcurrency ?? 50, startOne, () => stopping).catch(
        async (error: unknown) => {
          stopping = true;
          await stopAll(4_000);
          throw error;
        },
      );
      return starting;
    },
    async stop(timeoutMs = 4_000) {
      stopping = true;
      halt.abort();
      await starting?.catch(() => undefined);
      await stopAll(timeoutMs);
    },
    summary: () => summarizeFleet(options.count, agents),
    status: (machineId) => byId.get(machineId)?.agent.status(),
  };
}

/** `createFleet` and `start` in one: resolves with the fleet once every agent is started. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const fleet = createFleet(options);
  await fleet.start();
  return fleet;
}
