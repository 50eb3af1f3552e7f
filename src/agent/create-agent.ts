import { hostname as osHostname } from "node:os";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Service } from "@nats-io/services";
import { EventType, machineSubjects, type HeartbeatMessage, type InstalledAgentMessage } from "../contracts/index.ts";
import { createOutboxEventSink } from "../events/outbox-event-sink.ts";
import type { EventSink } from "../events/event-sink.ts";
import { resolveMachineId } from "../identity/machine-id.ts";
import { inboxPrefixOf } from "../identity/permissions.ts";
import { createConnectionEventRecorder } from "../lifecycle/connection-events.ts";
import { createHeartbeat, type Heartbeat } from "../lifecycle/heartbeat.ts";
import { createHostnameReporter } from "../lifecycle/hostname-reporter.ts";
import { openOutbox, type Outbox } from "../outbox/index.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";
import { runShutdownSteps } from "../runtime/ordered-shutdown.ts";
import { removeAbandonedTemporaries } from "../runtime/atomic-file.ts";
import { AGENT_TYPE, AGENT_VERSION } from "../runtime/version.ts";
import type { Settings } from "../settings/index.ts";
import { buildConnectionOptions, DEFAULT_LINK_TUNING, jitteredBackoff, type LinkTuning } from "../transport/connection-options.ts";
import { createJetStreamPublisher } from "../transport/jetstream-publisher.ts";
import { createNatsLink, defaultConnectionFactory, type ConnectionFactory, type NatsLink } from "../transport/link.ts";
import { startRpcService } from "../transport/rpc-service.ts";
import { createTelemetry, type Telemetry } from "../telemetry/index.ts";
import { childInventoryCollector } from "../telemetry/inventory-child.ts";
import { createRemoteConfig, type ConfigurableComponent } from "../config/index.ts";
import { createConfigPushListener } from "../config/download-push.ts";
import { createToolManager } from "../tools/index.ts";
import { join } from "node:path";
import type { AgentConfiguration } from "../contracts/index.ts";
import { createSelfUpdater } from "../update/self-updater.ts";
import { FaultLatch } from "../runtime/fault-latch.ts";
import { createCommandTrust } from "../trust/index.ts";
import { createErrorLog, STATUS_FILE_INTERVAL_MS, writeStatusFile, type AgentStatus } from "./status.ts";

/** Everything an agent needs from its surroundings, injected so one process can host thousands. */
export interface AgentDependencies {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly connectionFactory?: ConnectionFactory;
  readonly hostname?: () => string;
  readonly linkTuning?: LinkTuning;
  /** Keep `status.json` in the data dir current (the daemon does; a simulator need not). */
  readonly writeStatusFile?: boolean;
  /** Collect and send telemetry and inventory (default true; a fleet simulator turns it off). */
  readonly telemetry?: boolean;
  /**
   * Stops this agent and starts it again through the service manager: the daemon gives one.
   * Without it, self-update commands are refused (nothing could start the new version).
   */
  readonly requestRestart?: (reason: string) => void;
  /**
   * The agent's own command line: when given, inventories run in a child (`<command> inventory
   * --json`) so their memory never stays in this process. Default: in this process.
   */
  readonly inventoryCommand?: readonly string[];
}

export interface Agent {
  readonly machineId: string;
  readonly sink: EventSink;
  start(): Promise<void>;
  /** Stops every part and drains the link; resolves within about `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  status(): AgentStatus;
  setHeartbeatSeconds(seconds: number): void;
}

export async function createAgent(settings: Settings, deps: AgentDependencies): Promise<Agent> {
  const { clock } = deps;
  const machineId = await resolveMachineId(settings.machineId, settings.dataDir);
  const logger = deps.logger.child({ machineId });
  const subjects = machineSubjects(machineId);
  // Every request, JetStream call and delivery of this agent is answered here, never on the shared _INBOX.
  const inboxPrefix = inboxPrefixOf(machineId, settings.inboxPrefix);
  const startedAtMs = clock.now();
  const errors = createErrorLog(10);
  const recordError = (source: string, error: unknown): void => {
    errors.record(new Date(clock.now()).toISOString(), source, error instanceof Error ? error.message : String(error));
  };

  // pino children copy their level when made: a live log-level change must reach each one.
  const componentLoggers = {
    outbox: logger.child({ component: "outbox" }),
    telemetry: logger.child({ component: "telemetry" }),
    remoteConfig: logger.child({ component: "remote-config" }),
    tools: logger.child({ component: "tools" }),
    update: logger.child({ component: "update" }),
  };
  // Never the injected logger itself: other agents in this process log through it (pino children
  // follow their parent's level until given their own), so one agent's level would become all's.
  const allLoggers = [logger, ...Object.values(componentLoggers)];

  const outbox: Outbox = openOutbox({
    dataDir: settings.dataDir,
    clock,
    logger: componentLoggers.outbox,
    maxBytes: settings.outbox.maxBytes,
    maxAgeMs: settings.outbox.maxAgeSeconds * 1000,
    durability: settings.outbox.durability,
  });
  const sink = createOutboxEventSink({ machineId, subjects, clock, outbox });
  const connectionEvents = createConnectionEventRecorder({ machineId, sink, clock, logger });
  const hostnameReporter = createHostnameReporter({ sink, hostname: deps.hostname ?? osHostname, logger });
  const telemetry: Telemetry | null =
    deps.telemetry === false
      ? null
      : createTelemetry({
          machineId,
          clock,
          logger: componentLoggers.telemetry,
          sink,
          telemetrySchedule: settings.telemetrySchedule,
          inventorySchedule: settings.inventorySchedule,
          outboxStats: () => outbox.stats(),
          tags: settings.tags,
          ...(deps.inventoryCommand ? { collectInventory: childInventoryCollector(deps.inventoryCommand) } : {}),
        });

  // One gate for everything signed, with one set of accepted-serial marks in the data dir.
  const trust = createCommandTrust({ publicKey: settings.configSigningKey, dataDir: settings.dataDir, clock, logger });

  const tools = createToolManager({
    machineId,
    toolsDir: join(settings.dataDir, "tools"),
    clock,
    logger: componentLoggers.tools,
    sink,
    serverUrl: settings.natsServers[0] ?? "",
    policy: settings.toolPolicy,
    download: { stallTimeoutMs: settings.toolPolicy.downloadStallSeconds * 1000, deadlineMs: settings.toolPolicy.downloadDeadlineSeconds * 1000 },
    // What the outbox may grow to stays free: unpacking a tool never takes the outbox's room.
    diskReserveBytes: settings.outbox.maxBytes,
    trust,
  });
  let toolPolicy = { ...settings.toolPolicy };
  /** What `status` shows of the tools; refreshed before each report (reading it is async). */
  let toolsSnapshot: Array<{ toolAgentId: string; version: string | null; state: string; error: string | null; agentToolId: string | null }> = [];
  const refreshTools = async (): Promise<void> => {
    toolsSnapshot = (await tools.list()).map(({ toolAgentId, version, state, error, agentToolId }) => ({ toolAgentId, version, state, error, agentToolId }));
  };

  /** The local settings as a configuration: remote documents are merged over it. */
  const baseline: AgentConfiguration = {
    revision: 0,
    heartbeatSeconds: settings.heartbeatSeconds,
    telemetrySchedule: settings.telemetrySchedule,
    inventorySchedule: settings.inventorySchedule,
    logLevel: settings.logLevel,
    tags: settings.tags,
    outbox: { maxBytes: settings.outbox.maxBytes, maxAgeSeconds: settings.outbox.maxAgeSeconds },
    toolPolicy: { allowMissingChecksum: settings.toolPolicy.allowMissingChecksum },
  };
  // Each live setting has one small applier; any of them may refuse, and then all roll back.
  const components: ConfigurableComponent[] = [
    {
      name: "heartbeat",
      apply: (next) => {
        if (next.heartbeatSeconds !== undefined && next.heartbeatSeconds !== heartbeat.intervalSeconds) heartbeat.setIntervalSeconds(next.heartbeatSeconds);
      },
    },
    {
      name: "telemetry",
      apply: (next) => telemetry?.reconfigure({ telemetrySchedule: next.telemetrySchedule, inventorySchedule: next.inventorySchedule, tags: next.tags }),
    },
    {
      name: "outbox",
      apply: (next) => outbox.updateLimits({ maxBytes: next.outbox?.maxBytes, maxAgeMs: next.outbox?.maxAgeSeconds === undefined ? undefined : next.outbox.maxAgeSeconds * 1000 }),
    },
    {
      name: "tool-policy",
      apply: (next) => {
        toolPolicy = { ...toolPolicy, allowMissingChecksum: next.toolPolicy?.allowMissingChecksum ?? settings.toolPolicy.allowMissingChecksum };
        tools.updatePolicy(toolPolicy);
      },
    },
    {
      name: "log-level",
      apply: (next) => {
        if (next.logLevel === undefined) return;
        for (const each of allLoggers) each.level = next.logLevel;
      },
    },
  ];
  const remoteConfig = createRemoteConfig({
    machineId,
    configDir: settings.configDir,
    clock,
    logger: componentLoggers.remoteConfig,
    sink,
    components,
    baseline,
    trust,
  });

  const os = process.platform === "win32" ? "windows" : process.platform === "darwin" ? "macos" : "linux";
  const configPush = createConfigPushListener({
    machineId,
    os,
    downloadsDir: join(settings.dataDir, "downloads"),
    clock,
    logger: componentLoggers.remoteConfig,
    sink,
    remoteConfig,
    policy: () => toolPolicy,
    writeToolFile: (target, file) => tools.writeFile(target, file),
    trust,
  });

  const updater = createSelfUpdater({
    machineId,
    os,
    arch: process.arch,
    dataDir: settings.dataDir,
    runningVersion: AGENT_VERSION,
    clock,
    logger: componentLoggers.update,
    sink,
    trust,
    ...(deps.requestRestart ? { requestRestart: deps.requestRestart } : {}),
  });

  let connection: NatsConnection | null = null;
  let server: string | null = null;
  let reconnects = 0;
  let rpcService: Service | null = null;
  let drainStarted = false;

  const backoff = jitteredBackoff({
    baseMs: (deps.linkTuning ?? DEFAULT_LINK_TUNING).reconnectBaseMs,
    maxMs: (deps.linkTuning ?? DEFAULT_LINK_TUNING).reconnectMaxMs,
  });

  const status = (): AgentStatus => ({
    machineId,
    version: AGENT_VERSION,
    pid: process.pid,
    startedAt: new Date(startedAtMs).toISOString(),
    uptimeSeconds: Math.round((clock.now() - startedAtMs) / 1000),
    connection: { state: link.state, server, reconnects, lastError: link.lastError },
    heartbeatSeconds: heartbeat.intervalSeconds,
    outbox: outbox.stats(),
    lastErrors: errors.list(),
    capabilities: {
      tools: toolsSnapshot,
      config: { revision: remoteConfig.current().revision, lastStatus: remoteConfig.lastStatus(), watchProblem: remoteConfig.watchProblem() },
      ...(telemetry ? { telemetry: telemetry.stats() } : {}),
      update: updater.status(),
    },
    writtenAt: new Date(clock.now()).toISOString(),
  });

  const onLinkUp = async (nc: NatsConnection): Promise<void> => {
    heartbeat.beatNow();
    remoteConfig.attach(nc);
    configPush.attach(nc);
    tools.attach(nc);
    // Connected is what "healthy" means for a version on trial after a self-update.
    updater.linkUp(nc).catch((error: unknown) => {
      recordError("update", error);
      logger.error({ err: error }, "self-update could not take the link");
    });
    if (!drainStarted) {
      outbox.start(createJetStreamPublisher(jetstream(nc)));
      drainStarted = true;
    } else {
      outbox.wake();
    }
    if (!rpcService) {
      rpcService = await startRpcService({
        connection: nc,
        machineId,
        version: AGENT_VERSION,
        subjects,
        logger,
        handlers: {
          health: () => ({ status: "ok", machineId, version: AGENT_VERSION, connection: link.state, uptimeSeconds: status().uptimeSeconds }),
          status: async () => {
            await refreshTools().catch((error: unknown) => recordError("tools", error));
            return status();
          },
          ...(telemetry ? { collect: () => telemetry.collectNow() } : {}),
          config: () => ({ running: remoteConfig.current(), lastStatus: remoteConfig.lastStatus() }),
        },
      });
    }
  };

  const link: NatsLink = createNatsLink({
    connectionOptions: () => ({ ...buildConnectionOptions(settings, machineId, backoff), inboxPrefix }),
    factory: deps.connectionFactory ?? defaultConnectionFactory,
    logger,
    resetBackoff: () => backoff.reset(),
    nextRetryDelayMs: () => backoff.next(),
    observer: {
      connected(connectedServer, nc) {
        connection = nc;
        server = connectedServer;
        connectionEvents.connected(connectedServer);
        onLinkUp(nc).catch((error: unknown) => {
          recordError("link", error);
          logger.error({ err: error }, "could not start the services that need the link");
        });
      },
      disconnected(lostServer, reason) {
        server = null;
        recordError("link", `disconnected from ${lostServer}: ${reason}`);
        connectionEvents.disconnected(lostServer, reason);
      },
      reconnected(newServer, nc) {
        server = newServer;
        reconnects += 1;
        connectionEvents.reconnected(newServer);
        onLinkUp(nc).catch((error: unknown) => recordError("link", error));
      },
      lost(reason) {
        recordError("link", `connection closed for good: ${reason}`);
        // Everything bound to the old connection is gone: starting afresh is the simple, safe way.
        if (deps.requestRestart) deps.requestRestart(`NATS connection closed for good: ${reason}`);
        else logger.error({ reason }, "NATS connection closed for good and nothing can restart the agent");
      },
    },
  });

  const encoder = new TextEncoder();
  const heartbeat: Heartbeat = createHeartbeat({
    intervalSeconds: settings.heartbeatSeconds,
    logger,
    beat: () => {
      if (!connection || link.state !== "connected") return false;
      // The interval travels with each beat: a bridge judging presence needs this machine's own.
      const body: HeartbeatMessage = { intervalSeconds: heartbeat.intervalSeconds };
      connection.publish(subjects.heartbeat, encoder.encode(JSON.stringify(body)));
      return true;
    },
    onTick: () => {
      hostnameReporter.check().catch((error: unknown) => recordError("hostname", error));
    },
  });

  // Kept fresh independently of the heartbeat interval, so an offline `edge-agent status` is current.
  let statusFileTimer: NodeJS.Timeout | undefined;
  const statusFileFault = new FaultLatch(logger, clock);
  const refreshStatusFile = async (): Promise<void> => {
    if (!deps.writeStatusFile) return;
    await refreshTools().catch((error: unknown) => recordError("tools", error));
    try {
      await writeStatusFile(settings.dataDir, status());
      statusFileFault.recover("the status file is written again");
    } catch (error) {
      recordError("status-file", error);
      statusFileFault.fail("cannot write the status file", error, "`edge-agent status` shows the last one written, and how old it is; writing is retried");
    }
  };

  return {
    machineId,
    sink,
    status,
    setHeartbeatSeconds: (seconds) => heartbeat.setIntervalSeconds(seconds),
    async start() {
      // The status file being replaced when the last run was killed leaves its sibling behind.
      await removeAbandonedTemporaries(settings.dataDir).catch((error: unknown) => recordError("data-dir", error));
      const announcement: InstalledAgentMessage = { machineId, agentType: AGENT_TYPE, version: AGENT_VERSION };
      // The outbox refuses an event only when its storage is broken: the agent runs on, and says so.
      const startEventFailed = (what: string) => (error: unknown): void => {
        recordError("outbox", error);
        logger.error({ err: error }, `cannot store the ${what}`);
      };
      await sink.emit({ type: EventType.installedAgent, body: announcement }).catch(startEventFailed("installed-agent announcement"));
      await hostnameReporter.check().catch(startEventFailed("hostname"));
      await updater.start().catch((error: unknown) => {
        recordError("update", error);
        logger.error({ err: error }, "self-update state unusable; updates may fail until it is fixed");
      });
      logger.info({ version: AGENT_VERSION, natsServers: settings.natsServers, dataDir: settings.dataDir }, "edge-agent starting");
      await telemetry?.start();
      // The last good remote configuration first, so the link can only bring newer revisions.
      await remoteConfig.start();
      // Installs cut short by a crash are cleaned up before the platform redelivers them.
      await tools.start().catch((error: unknown) => recordError("tools", error));
      link.start();
      // Ticks run offline too: they keep the status file and the hostname check current.
      heartbeat.start();
      await refreshStatusFile();
      if (deps.writeStatusFile) {
        statusFileTimer = setInterval(() => void refreshStatusFile(), STATUS_FILE_INTERVAL_MS);
        statusFileTimer.unref();
      }
    },
    async stop(timeoutMs = 4_000) {
      heartbeat.stop();
      telemetry?.stop();
      clearInterval(statusFileTimer);
      // The order matters: commands stop before the outbox closes (their results go through it),
      // and the link closes last so what the outbox still sends can be flushed.
      const linkBudgetMs = 250;
      const startedMs = clock.monotonicMs();
      await runShutdownSteps(
        [
          { name: "remote config", stop: () => remoteConfig.stop() },
          { name: "config pushes", stop: () => configPush.stop() },
          { name: "tools", stop: () => tools.stop() },
          { name: "self-update", stop: () => updater.stop() },
          { name: "rpc service", stop: async () => void (await rpcService?.stop()) },
          { name: "outbox", stop: () => outbox.stop() },
          { name: "status file", stop: () => refreshStatusFile() },
        ],
        { budgetMs: Math.max(0, timeoutMs - linkBudgetMs), nowMs: () => clock.monotonicMs(), logger },
      );
      await link.close(Math.max(linkBudgetMs, timeoutMs - (clock.monotonicMs() - startedMs)));
      logger.info("edge-agent stopped");
    },
  };
}
