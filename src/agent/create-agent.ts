import { hostname as osHostname } from "node:os";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type CapabilityContext, GatheredContributions } from "../capability/index.ts";
import { AgentCommands } from "../commands/index.ts";
import { machineSubjects } from "../contracts/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import { createOutboxEventSink, encodeEvent } from "../events/index.ts";
import { inboxPrefixOf, resolveMachineId } from "../identity/index.ts";
import { lifecycleCapability } from "../lifecycle/index.ts";
import { openOutbox } from "../outbox/index.ts";
import {
  AGENT_VERSION,
  type Clock,
  createLoggerFamily,
  jitteredBackoff,
  type Logger,
  removeAbandonedTemporaries,
  runShutdownSteps,
  sleepOn,
} from "../runtime/index.ts";
import { conventionsOf, type Settings } from "../settings/index.ts";
import {
  buildConnectionOptions,
  type ConnectionFactory,
  createJetStreamPublisher,
  createNatsLink,
  DEFAULT_LINK_TUNING,
  defaultConnectionFactory,
  type LinkTuning,
} from "../transport/index.ts";
import { createCommandTrust } from "../trust/index.ts";
import type { UninstallAgent } from "../uninstall/index.ts";
import { agentCapabilities } from "./capabilities.ts";
import { CapabilityList } from "./capability-list.ts";
import { agentCoreCapability, outboxDrained } from "./core.ts";
import { type AgentStatus, createErrorLog, createStatusAssembly, LinkRecord } from "./status.ts";
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

/** How long the outbox waits for the capabilities to take a new link before it sends (at most). */
const ATTACH_BEFORE_DRAIN_MS = 2_000;

export interface Agent {
  readonly machineId: string;
  readonly sink: EventSink;
  start(): Promise<void>;
  /** Stops every part and drains the link; resolves within about `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  status(): AgentStatus;
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
  const outbox = openOutbox({
    dataDir: settings.dataDir,
    clock,
    logger: loggers.child({ component: "outbox" }),
    maxBytes: settings.outbox.maxBytes,
    maxAgeMs: settings.outbox.maxAgeSeconds * 1000,
    durability: settings.outbox.durability,
  });
  const sink = createOutboxEventSink({
    machineId,
    subjects,
    clock,
    outbox,
    ...(deps.onEventStored ? { afterAppend: deps.onEventStored } : {}),
  });
  // One gate for everything signed, with one set of accepted-serial marks in the data dir.
  const trust = createCommandTrust({
    publicKey: settings.configSigningKey,
    allowUnsigned: settings.allowUnsigned,
    dataDir: settings.dataDir,
    clock,
    logger,
  });
  const commands = new AgentCommands({
    machineId,
    inbox: outbox.commands,
    encode: (event) => {
      const { eventId: _eventId, ...entry } = encodeEvent(event, { machineId, subjects, clock });
      return entry;
    },
    ...(deps.onEventStored ? { stored: deps.onEventStored } : {}),
    clock,
    logger: loggers.child({ component: "commands" }),
    ...(deps.commandCheckEveryMs === undefined ? {} : { checkEveryMs: deps.commandCheckEveryMs }),
  });
  const contributions = new GatheredContributions();
  const contextFor = (component: string): CapabilityContext => ({
    machineId,
    subjects,
    settings,
    clock,
    logger: loggers.child({ component }),
    sink,
    trust,
    commands,
    platform: deps.platform ?? "linux",
    arch: deps.arch ?? "x64",
    contributions,
    readOutboxGauge: () => {
      const { lastError: _storageError, deliveryProblem: _deliveryProblem, ...counts } = outbox.stats();
      return counts;
    },
    recordError,
  });
  const capabilities = new CapabilityList({
    failed: (capability, error) => {
      recordError(capability, error);
      logger.error({ err: error, capability }, "a capability failed");
    },
  });
  const lifecycle = lifecycleCapability(contextFor("lifecycle"), { hostname: deps.hostname ?? osHostname });

  const backoff = jitteredBackoff({
    baseMs: (deps.linkTuning ?? DEFAULT_LINK_TUNING).reconnectBaseMs,
    maxMs: (deps.linkTuning ?? DEFAULT_LINK_TUNING).reconnectMaxMs,
  });
  // Every request, JetStream call and delivery of this agent is answered here, never on the shared _INBOX.
  const inboxPrefix = inboxPrefixOf(machineId, settings.inboxPrefix);
  const linkRecord = new LinkRecord();
  let drainStarted = false;
  let statusFile: StatusFileWriter | null = null;
  const linkUp = async (server: string, connection: NatsConnection, reconnected: boolean): Promise<void> => {
    linkRecord.up(server, reconnected);
    void statusFile?.refresh();
    commands.attach(connection);
    // The endpoints first (briefly): whoever sees this agent's events can ask it at once.
    await Promise.race([
      capabilities.attachAll({ connection, server, reconnected }),
      sleepOn(clock, ATTACH_BEFORE_DRAIN_MS),
    ]);
    if (!drainStarted) outbox.start(createJetStreamPublisher(jetstream(connection)));
    else outbox.wake();
    drainStarted = true;
  };
  const link = createNatsLink({
    connectionOptions: () => ({ ...buildConnectionOptions(settings, machineId, backoff), inboxPrefix }),
    factory: deps.connectionFactory ?? defaultConnectionFactory,
    logger,
    clock,
    resetBackoff: () => backoff.reset(),
    nextRetryDelayMs: () => backoff.next(),
    observer: {
      connected: (server, connection) => void linkUp(server, connection, false),
      reconnected: (server, connection) => void linkUp(server, connection, true),
      disconnected(server, reason) {
        linkRecord.down();
        void statusFile?.refresh();
        commands.detach();
        recordError("link", `disconnected from ${server}: ${reason}`);
        capabilities.detachAll(server, reason);
      },
      lost(reason) {
        recordError("link", `connection closed for good: ${reason}`);
        // Everything bound to the old connection is gone: starting afresh is the simple, safe way.
        if (deps.requestRestart) deps.requestRestart(`NATS connection closed for good: ${reason}`);
        else logger.error({ reason }, "NATS connection closed for good and nothing can restart the agent");
      },
    },
  });
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
    linkRecord,
    heartbeatSeconds: () => lifecycle.heartbeatSeconds,
    commands: () => {
      const reading = commands.status();
      let counts = { pending: 0, running: 0 };
      try {
        counts = outbox.commands.counts();
      } catch {
        // The database cannot be read now: the outbox's own status says why.
      }
      return {
        trust: trust.mode,
        feeds: reading.feeds,
        lastCheckedAt: reading.lastCheckedAtMs === null ? null : new Date(reading.lastCheckedAtMs).toISOString(),
        problem: reading.problem,
        pending: counts.pending,
        running: counts.running,
      };
    },
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
  const wiring = {
    telemetry: deps.telemetry !== false,
    inventoryCommand: deps.inventoryCommand,
    requestRestart: deps.requestRestart,
    childEnvironment: deps.childEnvironment,
    runningFrom: deps.runningFrom,
    uninstall: deps.uninstall,
    outboxDrained: outboxDrained(outbox, clock),
    taskLedger: outbox.tasks,
  };
  capabilities.add(core, lifecycle);
  for (const { name, create } of agentCapabilities(wiring)) {
    const capability = create(contextFor(name));
    if (capability) capabilities.add(capability);
  }
  contributions.gather(capabilities.all);

  /** Loud at every start: how this agent takes commands, when that is not "signed", and what the platform's conventions change. */
  const reportTrustMode = (): void => {
    if (trust.mode === "unsigned" && settings.platform === "openframe") {
      logger.warn(
        "OpenFrame's conventions (platform openframe): no configSigningKey, so this agent takes UNSIGNED commands and configuration, as OpenFrame sends them. Safe only in the account layout (edge-agent accounts): in one account any machine can make the server store a copy of its own old command on another machine's subject",
      );
    } else if (trust.mode === "unsigned") {
      logger.warn(
        "DEVELOPMENT MODE: allowUnsigned is set and there is no configSigningKey, so this agent takes UNSIGNED commands and configuration; never run a production machine like this",
      );
    } else if (trust.mode === "refused") {
      logger.error(
        "no configSigningKey: this agent refuses every command and remote configuration (reported REJECTED/FAILED); give it the platform's key, or set allowUnsigned for development",
      );
    }
    const { allowed, hosts } = conventions.downloadsWithoutChecksum;
    if (allowed && hosts.length === 0)
      logger.warn(
        { platform: settings.platform },
        "downloads without a sha256 are allowed, but no host may serve them: every such tool, push or update is refused until toolPolicy.allowedDownloadHosts (EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS) names the hosts",
      );
    else if (allowed)
      logger.info(
        { platform: settings.platform, allowedDownloadHosts: hosts },
        "downloads without a sha256 are taken over HTTPS from the allowed hosts only; the size and sha256 received are reported",
      );
  };

  return {
    machineId,
    sink,
    status: () => status.snapshot(),
    setHeartbeatSeconds: (seconds) => lifecycle.setHeartbeatSeconds(seconds),
    async start() {
      // The status file being replaced when the last run was killed leaves its sibling behind.
      await removeAbandonedTemporaries(settings.dataDir).catch((error: unknown) => recordError("data-dir", error));
      logger.info(
        { version: AGENT_VERSION, natsServers: settings.natsServers, dataDir: settings.dataDir },
        "edge-agent starting",
      );
      await capabilities.startAll();
      reportTrustMode();
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
