import { hostname as osHostname } from "node:os";
import { machineSubjects } from "../contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import { resolveMachineId } from "../identity/index.ts";
import { lifecycleCapability } from "../lifecycle/index.ts";
import {
  AGENT_VERSION,
  type Clock,
  createLoggerFamily,
  type Logger,
  removeAbandonedTemporaries,
  runShutdownSteps,
} from "../runtime/index.ts";
import { conventionsOf, type Settings } from "../settings/index.ts";
import type { ConnectionFactory, LinkTuning } from "../transport/index.ts";
import type { UninstallAgent } from "../uninstall/index.ts";
import { AgentLink } from "./agent-link.ts";
import { agentCapabilities } from "./capabilities.ts";
import { CapabilityList } from "./capability-list.ts";
import { CapabilityMaker } from "./capability-maker.ts";
import { agentCoreCapability, outboxDrained } from "./core.ts";
import { commandsStatusOf, openPlumbing } from "./plumbing.ts";
import { announceConventions } from "./start-announcement.ts";
import { type AgentProgress, type AgentStatus, createErrorLog, createStatusAssembly } from "./status.ts";
import { type StatusFileWriter, startStatusFile } from "./status-file.ts";

/** Everything an agent needs from its surroundings, injected so one process can host thousands. */
export interface AgentDependencies {
  readonly clock: Clock;
  /** The agent's loggers are children of this one; a log level set remotely changes only them. */
  readonly logger: Logger;
  readonly connectionFactory?: ConnectionFactory;
  readonly hostname?: () => string;
  readonly linkTuning?: LinkTuning;
  /** The OS the agent acts for (default linux): which downloads it picks, how it checks services. */
  readonly platform?: NodeJS.Platform;
  /** The CPU architecture it acts for (default x64): which self-update binary it picks. */
  readonly arch?: string;
  /** The process id `status` reports (default 0: not a process of its own). */
  readonly pid?: number;
  /** Keep `status.json` in the data dir current (the daemon does; a simulator need not). */
  readonly writeStatusFile?: boolean;
  /** Collect and send telemetry and inventory (default true; a fleet simulator turns it off). */
  readonly telemetry?: boolean;
  /**
   * Stops this agent and starts it again through the service manager: the daemon gives one.
   * Without it, self-update commands are refused (nothing could start the new version).
   */
  readonly requestRestart?: (reason: string) => void;
  /** The environment of programs the agent runs (a new version's check); default: inherited. */
  readonly childEnvironment?: NodeJS.ProcessEnv;
  /**
   * Removes the agent from this machine, after a verified remote uninstall was reported (the
   * daemon's removes the service and the package). Without it, uninstall commands are not taken.
   */
  readonly uninstall?: UninstallAgent;
  /**
   * The agent's own command line: when given, inventories run in a child (`<command> inventory
   * --json`) so their memory never stays in this process. Default: in this process.
   */
  readonly inventoryCommand?: readonly string[];
  /** What runs this agent, for its status: the single executable (default) or the sources with Node. */
  readonly runningFrom?: "executable" | "sources";
  /** Told of every event once it is in the outbox (the metrics count command outcomes this way). */
  readonly onEventStored?: (event: OutgoingEvent) => void;
  /** How often every command feed is checked besides hints and reconnects (default 10 min). */
  readonly commandCheckEveryMs?: number;
}

export interface Agent {
  readonly machineId: string;
  readonly sink: EventSink;
  start(): Promise<void>;
  /** Stops every part and drains the link; resolves within about `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  status(): AgentStatus;
  /** A few figures of the status, cheaply (status.ts: AgentProgress). */
  progress(): AgentProgress;
  setHeartbeatSeconds(seconds: number): void;
}

/**
 * One agent: the outbox and the link, and the capabilities (capabilities.ts) wired to them. This
 * is wiring only: what each capability does is in its own folder, behind `Capability`.
 */
export async function createAgent(settings: Settings, deps: AgentDependencies): Promise<Agent> {
  const { clock } = deps;
  const startedAtMs = clock.now();
  const machineId = await resolveMachineId(settings.machineId, settings.dataDir);
  const loggers = createLoggerFamily(deps.logger.child({ machineId }));
  const logger = loggers.root;
  const subjects = machineSubjects(machineId);
  const errors = createErrorLog(10);
  const recordError = (source: string, error: unknown): void => {
    errors.record(new Date(clock.now()).toISOString(), source, error instanceof Error ? error.message : String(error));
  };
  const plumbing = openPlumbing({
    settings,
    machineId,
    subjects,
    clock,
    loggers,
    onEventStored: deps.onEventStored,
    commandCheckEveryMs: deps.commandCheckEveryMs,
  });
  const { outbox, commands } = plumbing;
  const capabilities = new CapabilityList({
    failed: (capability, error) => {
      recordError(capability, error);
      logger.error({ err: error, capability }, "a capability failed");
    },
  });
  let statusFile: StatusFileWriter | null = null;
  const link = new AgentLink({
    settings,
    machineId,
    clock,
    logger,
    connectionFactory: deps.connectionFactory,
    linkTuning: deps.linkTuning,
    requestRestart: deps.requestRestart,
    commands,
    capabilities,
    outbox,
    changed: () => void statusFile?.refresh(),
    recordError,
  });
  const maker = new CapabilityMaker({
    settings,
    machineId,
    subjects,
    clock,
    loggers,
    plumbing,
    platform: deps.platform ?? "linux",
    arch: deps.arch ?? "x64",
    recordError,
  });
  const lifecycle = maker.make(lifecycleCapability({ hostname: deps.hostname ?? osHostname }));
  const conventions = conventionsOf(settings);
  const status = createStatusAssembly({
    machineId,
    version: AGENT_VERSION,
    pid: deps.pid ?? 0,
    clock,
    startedAtMs,
    errors,
    outboxStats: () => outbox.stats(),
    link,
    linkRecord: link.record,
    heartbeatSeconds: () => lifecycle.heartbeatSeconds,
    commands: () => commandsStatusOf(plumbing),
    conventions,
    capabilities,
  });
  const core = agentCoreCapability({
    machineId,
    version: AGENT_VERSION,
    outbox,
    loggers,
    linkState: () => link.state,
    uptimeSeconds: status.uptimeSeconds,
    status: status.current,
  });
  capabilities.add("agent", core);
  capabilities.add("lifecycle", lifecycle);
  const listed = agentCapabilities({
    telemetry: deps.telemetry !== false,
    inventoryCommand: deps.inventoryCommand,
    requestRestart: deps.requestRestart,
    childEnvironment: deps.childEnvironment,
    runningFrom: deps.runningFrom,
    uninstall: deps.uninstall,
    outboxDrained: outboxDrained(outbox, clock),
    taskLedger: outbox.tasks,
  });
  for (const definition of listed) capabilities.add(definition.name, maker.make(definition));
  maker.resolve(capabilities.all);

  return {
    machineId,
    sink: plumbing.sink,
    status: () => status.snapshot(),
    progress() {
      const reading = commands.status();
      return {
        linkState: link.state,
        outboxPending: outbox.pendingCount(),
        commandsReadAtMs: reading.lastCheckedAtMs,
        commandsProblem: reading.problem,
      };
    },
    setHeartbeatSeconds: (seconds) => lifecycle.setHeartbeatSeconds(seconds),
    async start() {
      // The status file being replaced when the last run was killed leaves its sibling behind.
      await removeAbandonedTemporaries(settings.dataDir).catch((error: unknown) => recordError("data-dir", error));
      logger.info(
        { version: AGENT_VERSION, natsServers: settings.natsServers, dataDir: settings.dataDir },
        "edge-agent starting",
      );
      await capabilities.startAll();
      announceConventions(logger, plumbing.trust.mode, conventions);
      commands.start();
      // Before the link: its first change of state must find the file's writer to rewrite it.
      if (deps.writeStatusFile)
        statusFile = await startStatusFile({
          dataDir: settings.dataDir,
          clock,
          logger,
          current: status.current,
          recordError,
        });
      link.start();
    },
    async stop(timeoutMs = 4_000) {
      // The order matters: commands stop before the outbox closes (their results go through it),
      // and the link closes last so what the outbox still sends can be flushed.
      const linkBudgetMs = 250;
      const startedMs = clock.monotonicMs();
      await runShutdownSteps(
        [
          ...capabilities.stopSteps(),
          { name: "commands", stop: () => commands.stop() },
          { name: "outbox", stop: () => outbox.stop() },
          { name: "status file", stop: async () => void (await statusFile?.stop()) },
        ],
        { budgetMs: Math.max(0, timeoutMs - linkBudgetMs), clock, logger },
      );
      await link.close(Math.max(linkBudgetMs, timeoutMs - (clock.monotonicMs() - startedMs)));
      logger.info("edge-agent stopped");
    },
  };
}
