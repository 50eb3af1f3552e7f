import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  EventType,
  fleetSubjects,
  isSafeToken,
  machineSubjects,
  OsName,
  ToolInstallationMessage,
  type InstalledAgentMessage,
  type ToolInstallationStatus,
} from "../contracts/index.ts";
import type { EventSink } from "../events/event-sink.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../runtime/logger.ts";
import { jitteredBackoff } from "../transport/connection-options.ts";
import { installTool, recoverToolDir, ToolInstallError, uninstallTool } from "./installer.ts";
import { toolStore, type ToolRecord } from "./tool-state.ts";
import { checkToolAlive, readAgentToolId } from "./connection-monitor.ts";
import { toolDirOf } from "./installer.ts";
import type { ToolConnectionMessage } from "../contracts/index.ts";

export const TOOL_STREAM = "TOOL_INSTALLATION";
export const TOOL_UPDATE_STREAM = "TOOL_UPDATE";

export interface ToolPolicy {
  readonly allowMissingChecksum: boolean;
  readonly maxDownloadBytes: number;
}

export interface ToolManagerOptions {
  readonly machineId: string;
  /** Tools live in `<toolsDir>/<toolAgentId>`, their state beside them. */
  readonly toolsDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  /** For the `${client.serverUrl}` placeholder. */
  readonly serverUrl: string;
  readonly policy: ToolPolicy;
  readonly platform?: NodeJS.Platform;
  readonly commandTimeoutMs?: number;
  /** Ack wait for consumers the agent creates (default 60 s); installs in progress keep it alive. */
  readonly ackWaitMs?: number;
  /** How often each installed tool is checked (default 60 s); a change is reported at once, and every tool hourly. */
  readonly checkIntervalMs?: number;
}

export interface ToolManager {
  /** Cleans up installs cut short by a crash, and starts watching installed tools. */
  start(): Promise<void>;
  /** The link is up: bind the durable consumer (once; it follows reconnects itself). */
  attach(connection: NatsConnection): void;
  stop(): Promise<void>;
  list(): Promise<ToolRecord[]>;
  updatePolicy(policy: Partial<ToolPolicy>): void;
}

function osOf(platform: NodeJS.Platform): OsName {
  return platform === "win32" ? "windows" : platform === "darwin" ? "macos" : "linux";
}

/**
 * Installs and removes the platform's tools as it asks on `machine.{id}.tool-installation` and
 * `.tool-uninstall` (stream TOOL_INSTALLATION, durable consumer `machine_{id}_tool-installation_consumer`).
 * Ack on success; nak with backoff when trying again can help; term (after reporting FAILED) when
 * it cannot. One install at a time per tool; the same version already installed is acked at once.
 */
export function createToolManager(options: ToolManagerOptions): ToolManager {
  const { machineId, logger, sink, clock } = options;
  const subjects = machineSubjects(machineId);
  const store = toolStore(options.toolsDir);
  const os = osOf(options.platform ?? process.platform);
  let policy = { ...options.policy };
  let connection: NatsConnection | null = null;
  let stopped = false;
  let attached = false;
  /** Update consumers of tools that were uninstalled: their loop deletes them once stopped. */
  const retired = new Set<string>();
  const watchedUpdates = new Set<string>();
  const updateConsumerOf = (toolAgentId: string): string => `machine_${machineId}_tool_${toolAgentId}_update_consumer`;
  /**
   * `machine.all.tool.{toolAgentId}.update` (stream TOOL_UPDATE) for each installed tool, through a
   * durable consumer of this machine's, so an update published while it was offline still arrives.
   */
  const watchUpdates = (toolAgentId: string): void => {
    if (!connection || watchedUpdates.has(toolAgentId) || stopped) return;
    watchedUpdates.add(toolAgentId);
    void consume(connection, updateConsumerOf(toolAgentId), fleetSubjects.toolUpdate(toolAgentId), TOOL_UPDATE_STREAM, DeliverPolicy.New);
  };
  const stoppers = new Map<string, () => void>();
  const locks = new Map<string, Promise<unknown>>();
  const ackWaitMs = options.ackWaitMs ?? 60_000;

  const withToolLock = <T>(toolAgentId: string, work: () => Promise<T>): Promise<T> => {
    const previous = locks.get(toolAgentId) ?? Promise.resolve();
    const result = previous.then(work, work);
    locks.set(toolAgentId, result.catch(() => undefined));
    return result;
  };

  const report = async (message: ToolInstallationMessage, state: ToolInstallationStatus["state"], error: string | null, causationId: string | undefined): Promise<void> => {
    const body: ToolInstallationStatus = {
      toolAgentId: message.toolAgentId,
      toolId: message.toolId ?? null,
      toolType: message.toolType ?? null,
      version: message.version ?? null,
      state,
      error,
      timestamp: new Date(clock.now()).toISOString(),
    };
    await sink.emit({ type: EventType.toolInstallationStatus, body, ...(causationId ? { causationId } : {}) });
  };

  const save = (message: ToolInstallationMessage, state: ToolRecord["state"], error: string | null, mainFile: string | null, previous: ToolRecord | null): Promise<void> =>
    store.write({
      toolAgentId: message.toolAgentId,
      version: message.version ?? null,
      state,
      error,
      updatedAt: new Date(clock.now()).toISOString(),
      message,
      mainFile,
      agentToolId: previous?.agentToolId ?? null,
      connection: previous?.connection ?? null,
    });

  const install = async (message: ToolInstallationMessage, causationId: string | undefined, keepAlive: { beat: () => void; everyMs: number }): Promise<void> => {
    const current = await store.read(message.toolAgentId);
    if (current?.state === "INSTALLED" && current.version === (message.version ?? null) && !message.reinstall) {
      logger.info({ toolAgentId: message.toolAgentId, version: message.version }, "tool already installed at this version");
      await report(message, "INSTALLED", null, causationId);
      return;
    }
    await save(message, "DOWNLOADING", null, current?.mainFile ?? null, current);
    await report(message, "DOWNLOADING", null, causationId);
    const ticker = setInterval(keepAlive.beat, keepAlive.everyMs);
    try {
      const mainFile = await installTool(message, {
        toolsDir: options.toolsDir,
        os,
        machineId,
        serverUrl: options.serverUrl,
        connection,
        policy,
        commandTimeoutMs: options.commandTimeoutMs ?? 10 * 60_000,
        onInstalling: async () => {
          await save(message, "INSTALLING", null, current?.mainFile ?? null, current);
          await report(message, "INSTALLING", null, causationId);
        },
      });
      await save(message, "INSTALLED", null, mainFile, current);
      await report(message, "INSTALLED", null, causationId);
      const announcement: InstalledAgentMessage = { machineId, agentType: message.toolAgentId, version: message.version ?? "unknown" };
      await sink.emit({ type: EventType.installedAgent, body: announcement, ...(causationId ? { causationId } : {}) });
      logger.info({ toolAgentId: message.toolAgentId, version: message.version }, "tool installed");
      watchUpdates(message.toolAgentId);
      // Its id and liveness right away, not at the next round (queued behind this install's lock).
      reported.delete(message.toolAgentId);
      void checkTools().catch((error: unknown) => logger.warn({ err: error }, "tool check failed"));
    } catch (error) {
      const retryable = error instanceof ToolInstallError && error.retryable;
      const reason = error instanceof Error ? error.message : String(error);
      // A retry comes back through redelivery; the platform sees FAILED only when it is final.
      if (!retryable) {
        await save(message, "FAILED", reason, current?.state === "INSTALLED" ? current.mainFile : null, current);
        await report(message, "FAILED", reason, causationId);
      }
      throw error;
    } finally {
      clearInterval(ticker);
    }
  };

  const uninstall = async (message: ToolInstallationMessage, causationId: string | undefined): Promise<void> => {
    const current = await store.read(message.toolAgentId);
    const known = current?.message ?? message;
    await uninstallTool({ ...known, uninstallationCommandArgs: message.uninstallationCommandArgs.length > 0 ? message.uninstallationCommandArgs : known.uninstallationCommandArgs }, current?.mainFile ?? null, {
      toolsDir: options.toolsDir,
      machineId,
      serverUrl: options.serverUrl,
      commandTimeoutMs: options.commandTimeoutMs ?? 10 * 60_000,
    });
    await save(known, "UNINSTALLED", null, null, current);
    if (watchedUpdates.delete(message.toolAgentId)) {
      const name = updateConsumerOf(message.toolAgentId);
      retired.add(name);
      stoppers.get(name)?.();
    }
    await report(known, "UNINSTALLED", null, causationId);
    logger.info({ toolAgentId: message.toolAgentId }, "tool uninstalled");
  };

  // term() goes without a reason: nats-server 2.9 does not parse "+TERM <reason>" and would leave
  // the message pending. The reason is in the FAILED status and the log instead.
  const handle = async (msg: JsMsg, keepAliveEveryMs: number): Promise<void> => {
    const causationId = msg.headers?.get("X-Event-ID") || `${TOOL_STREAM}:${msg.seq}`;
    let raw: unknown;
    try {
      raw = msg.json<unknown>();
    } catch {
      logger.error({ subject: msg.subject, seq: msg.seq }, "tool message is not JSON: terminated");
      msg.term();
      return;
    }
    const parsed = ToolInstallationMessage.safeParse(raw);
    const toolAgentId = typeof (raw as { toolAgentId?: unknown })?.toolAgentId === "string" ? (raw as { toolAgentId: string }).toolAgentId : null;
    if (!parsed.success || !isSafeToken(parsed.data.toolAgentId)) {
      const reason = parsed.success ? `toolAgentId ${JSON.stringify(parsed.data.toolAgentId)} is not a safe name` : `malformed tool message: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`;
      logger.error({ subject: msg.subject, seq: msg.seq, reason }, "tool message refused: terminated");
      if (toolAgentId) await report({ toolAgentId, downloadConfigurations: [], assets: [], installationCommandArgs: [], runCommandArgs: [], toolAgentIdCommandArgs: [], uninstallationCommandArgs: [], reinstall: false }, "FAILED", reason, causationId).catch(() => undefined);
      msg.term();
      return;
    }
    const message = parsed.data;
    const uninstalling = msg.subject === subjects.toolUninstall;
    if (msg.subject === fleetSubjects.toolUpdate(message.toolAgentId)) {
      const current = await store.read(message.toolAgentId);
      // Fleet-wide updates concern only machines that have the tool.
      if (current?.state !== "INSTALLED") {
        msg.ack();
        return;
      }
    }
    try {
      await withToolLock(message.toolAgentId, () => (uninstalling ? uninstall(message, causationId) : install(message, causationId, { beat: () => msg.working(), everyMs: keepAliveEveryMs })));
      msg.ack();
    } catch (error) {
      const retryable = error instanceof ToolInstallError && error.retryable;
      if (retryable) {
        const delayMs = Math.min(5 * 60_000, 5_000 * 2 ** Math.min(10, msg.info.deliveryCount - 1));
        logger.warn({ toolAgentId: message.toolAgentId, err: error, retryInMs: delayMs }, "tool install will be retried");
        msg.nak(delayMs);
      } else {
        logger.error({ toolAgentId: message.toolAgentId, err: error }, uninstalling ? "tool uninstall failed" : "tool install failed");
        msg.term();
      }
    }
  };

  /**
   * One durable consumer per subject: nats-server 2.9 takes a single filter per consumer, and it
   * must sit inside one of the stream's subjects. Installs use the name DESIGN.md gives; removals
   * `machine_{id}_tool-uninstall_consumer`.
   */
  const consume = async (nc: NatsConnection, name: string, filterSubject: string, stream = TOOL_STREAM, deliverPolicy: DeliverPolicy = DeliverPolicy.All): Promise<void> => {
    const backoff = jitteredBackoff({ baseMs: 1_000, maxMs: 60_000 });
    let lastReason: string | null = null;
    while (!stopped) {
      try {
        const manager = await jetstreamManager(nc);
        let info;
        try {
          info = await manager.consumers.info(stream, name);
        } catch (error) {
          if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.ConsumerNotFound) throw error;
          info = await manager.consumers.add(stream, {
            durable_name: name,
            filter_subject: filterSubject,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: deliverPolicy,
            ack_wait: ackWaitMs * 1_000_000,
          });
        }
        const consumer = await jetstream(nc).consumers.get(stream, name);
        const messages = await consumer.consume({ max_messages: 4 });
        stoppers.set(name, () => void messages.stop());
        logger.info({ consumer: name }, "listening for tool messages");
        lastReason = null;
        // The platform may have made the consumer with its own ack wait: keep installs alive within it.
        const keepAliveEveryMs = Math.max(200, (info.config.ack_wait ?? ackWaitMs * 1_000_000) / 1_000_000 / 3);
        for await (const msg of messages) {
          await handle(msg, keepAliveEveryMs);
        }
        if (retired.has(name)) {
          retired.delete(name);
          await manager.consumers.delete(stream, name).catch(() => undefined);
          return;
        }
      } catch (error) {
        if (stopped) return;
        const reason = error instanceof Error ? error.message : String(error);
        if (reason !== lastReason) logger.warn({ reason, consumer: name }, "cannot listen for tool messages yet; retrying");
        lastReason = reason;
        await new Promise((resolve) => setTimeout(resolve, backoff.next()).unref());
      }
    }
  };

  /** Last reported liveness per tool, and when: a change goes out at once, the same state hourly. */
  const reported = new Map<string, { state: string; atMs: number }>();
  const checkIntervalMs = options.checkIntervalMs ?? 60_000;
  let monitorTimer: NodeJS.Timeout | null = null;
  let checkFailures = 0;

  const checkTools = async (): Promise<void> => {
    for (const record of await store.list()) {
      if (record.state !== "INSTALLED" || stopped) continue;
      await withToolLock(record.toolAgentId, async () => {
        const current = await store.read(record.toolAgentId);
        if (!current || current.state !== "INSTALLED") return;
        const toolDir = toolDirOf(options.toolsDir, current.toolAgentId);
        let agentToolId = current.agentToolId;
        if (agentToolId === null) {
          agentToolId = await readAgentToolId(current, toolDir).catch((error: unknown) => {
            logger.warn({ toolAgentId: current.toolAgentId, err: error }, "cannot read the tool's own id yet");
            return null;
          });
        }
        const liveness = await checkToolAlive(current, toolDir, options.platform ?? process.platform);
        if (agentToolId !== current.agentToolId || liveness.state !== current.connection) {
          await store.write({ ...current, agentToolId, connection: liveness.state });
        }
        const last = reported.get(current.toolAgentId);
        if (last && last.state === liveness.state && clock.now() - last.atMs < 3_600_000) return;
        const body: ToolConnectionMessage = {
          toolType: current.message.toolType ?? current.toolAgentId,
          agentToolId: agentToolId ?? current.toolAgentId,
          state: liveness.state,
          checkedAt: new Date(clock.now()).toISOString(),
          detail: liveness.detail,
        };
        await sink.emit({ type: EventType.toolConnection, body });
        reported.set(current.toolAgentId, { state: liveness.state, atMs: clock.now() });
      });
    }
  };

  const scheduleCheck = (delayMs: number): void => {
    if (stopped) return;
    monitorTimer = setTimeout(() => {
      checkTools()
        .then(() => {
          checkFailures = 0;
          scheduleCheck(checkIntervalMs);
        })
        .catch((error: unknown) => {
          checkFailures += 1;
          logger.warn({ err: error }, "tool checks failed; retrying");
          scheduleCheck(Math.min(checkIntervalMs * 10, 5_000 * 2 ** Math.min(checkFailures, 6)));
        });
    }, delayMs);
    monitorTimer.unref();
  };

  return {
    async start() {
      for (const record of await store.list()) {
        if (record.state !== "DOWNLOADING" && record.state !== "INSTALLING") continue;
        await recoverToolDir(options.toolsDir, record.toolAgentId, record.state === "INSTALLING");
        logger.warn({ toolAgentId: record.toolAgentId, state: record.state }, "tool install was cut short; cleaned up, it resumes when the platform redelivers it");
      }
      scheduleCheck(0);
    },
    attach(nc) {
      connection = nc;
      if (attached || stopped) return;
      attached = true;
      void consume(nc, subjects.toolInstallationConsumer, subjects.toolInstallation);
      void consume(nc, `machine_${machineId}_tool-uninstall_consumer`, subjects.toolUninstall);
      void store.list().then((records) => {
        for (const record of records) if (record.state === "INSTALLED") watchUpdates(record.toolAgentId);
      });
    },
    async stop() {
      stopped = true;
      if (monitorTimer) clearTimeout(monitorTimer);
      for (const stopConsumer of stoppers.values()) stopConsumer();
      await Promise.all([...locks.values()]);
    },
    list: () => store.list(),
    updatePolicy(next) {
      policy = { ...policy, ...next };
    },
  };
}
