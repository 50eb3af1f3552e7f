import { DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
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
import { consumeDurable, type DurableConsumer } from "../transport/durable-consumer.ts";
import { arrivalOf, TRUST_RETRY_MS, type CommandTrust } from "../trust/index.ts";
import { installTool, recoverToolDir, ToolInstallError, uninstallTool } from "./installer.ts";
import { toolStore, type ToolRecord } from "./tool-state.ts";
import { checkToolAlive, readAgentToolId } from "./connection-monitor.ts";
import { placeToolFile, toolDirOf } from "./installer.ts";
import { runToolCommand } from "./run-command.ts";
import { systemdServiceState, type ServiceState } from "./service-state.ts";
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
  /** Whether a service runs; default: systemd where it runs, else "unknown" (nothing to check with). */
  readonly serviceState?: (serviceName: string) => Promise<ServiceState>;
  /** How long a SERVICE tool's service has to come up after its install command (default 30 s). */
  readonly serviceStartTimeoutMs?: number;
  /**
   * With a signing key, every tool command must be signed for the subject it came on with a rising
   * serial (a replayed or moved one is refused FAILED). Default: nothing checked.
   */
  readonly trust?: CommandTrust;
}

export interface ToolManager {
  /** Cleans up installs cut short by a crash, and starts watching installed tools. */
  start(): Promise<void>;
  /** The link is up: bind the durable consumer (once; it follows reconnects itself). */
  attach(connection: NatsConnection): void;
  stop(): Promise<void>;
  list(): Promise<ToolRecord[]>;
  updatePolicy(policy: Partial<ToolPolicy>): void;
  /**
   * Puts a pushed file into an installed tool's folder (atomically: copied beside, then renamed),
   * and restarts the tool's service when one is named. Throws a clear error when it cannot.
   */
  writeFile(target: { toolAgentId: string; relativePath: string; serviceName: string | null }, sourceFile: string): Promise<void>;
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
  const ackWaitMs = options.ackWaitMs ?? 60_000;
  const serviceState = options.serviceState ?? systemdServiceState;
  const consumers: DurableConsumer[] = [];
  const updateConsumers = new Map<string, DurableConsumer>();
  const updateConsumerOf = (toolAgentId: string): string => `machine_${machineId}_tool_${toolAgentId}_update_consumer`;
  /**
   * `machine.all.tool.{toolAgentId}.update` (stream TOOL_UPDATE) for each installed tool, through a
   * durable consumer of this machine's, so an update published while it was offline still arrives.
   */
  const watchUpdates = (toolAgentId: string): void => {
    if (!connection || updateConsumers.has(toolAgentId) || stopped) return;
    updateConsumers.set(toolAgentId, listen(connection, TOOL_UPDATE_STREAM, updateConsumerOf(toolAgentId), fleetSubjects.toolUpdate(toolAgentId), DeliverPolicy.New));
  };
  const listen = (nc: NatsConnection, stream: string, name: string, filterSubject: string, deliverPolicy: DeliverPolicy = DeliverPolicy.All): DurableConsumer =>
    consumeDurable({ connection: nc, stream, name, filterSubject, deliverPolicy, ackWaitMs, logger, handle });
  const locks = new Map<string, Promise<unknown>>();

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
        verify: async (main) => {
          if (main.installationType !== "SERVICE" || !main.serviceName) return;
          const serviceName = main.serviceName;
          const deadline = clock.monotonicMs() + (options.serviceStartTimeoutMs ?? 30_000);
          for (;;) {
            const state = await serviceState(serviceName);
            if (state === "active") return;
            if (state === "unknown") {
              logger.warn({ toolAgentId: message.toolAgentId, serviceName }, "cannot check the tool's service here (no service manager); installed without that check");
              return;
            }
            if (clock.monotonicMs() > deadline) throw new ToolInstallError(`tool ${message.toolAgentId}: service ${serviceName} is not running after install`, false);
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        },
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
        // A failed update leaves the working version in place: the record keeps saying so.
        if (current?.state === "INSTALLED") await store.write({ ...current, error: `update to ${message.version ?? "?"} failed: ${reason}`, updatedAt: new Date(clock.now()).toISOString() });
        else await save(message, "FAILED", reason, null, current);
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
    const updates = updateConsumers.get(message.toolAgentId);
    if (updates) {
      updateConsumers.delete(message.toolAgentId);
      // Not awaited: this runs inside a message of another consumer, which must settle first.
      void updates.stop({ remove: true });
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
    const admission = options.trust ? await options.trust.admit(raw, arrivalOf(msg)) : ({ admitted: true } as const);
    if (!admission.admitted && admission.retryLater) return msg.nak(TRUST_RETRY_MS);
    if (!admission.admitted || !parsed.success || !isSafeToken(parsed.data.toolAgentId)) {
      const reason = !admission.admitted
        ? `tool command refused: ${admission.error}`
        : parsed.success
          ? `toolAgentId ${JSON.stringify(parsed.data.toolAgentId)} is not a safe name`
          : `malformed tool message: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`;
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
        const liveness = await checkToolAlive(current, toolDir, options.platform ?? process.platform, serviceState);
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
      // One consumer per subject: nats-server 2.9 takes one filter. Installs use DESIGN.md's name.
      consumers.push(listen(nc, TOOL_STREAM, subjects.toolInstallationConsumer, subjects.toolInstallation));
      consumers.push(listen(nc, TOOL_STREAM, `machine_${machineId}_tool-uninstall_consumer`, subjects.toolUninstall));
      void store.list().then((records) => {
        for (const record of records) if (record.state === "INSTALLED") watchUpdates(record.toolAgentId);
      });
    },
    async stop() {
      stopped = true;
      if (monitorTimer) clearTimeout(monitorTimer);
      await Promise.all([...consumers, ...updateConsumers.values()].map((consumer) => consumer.stop()));
      await Promise.all([...locks.values()]);
    },
    list: () => store.list(),
    writeFile(target, sourceFile) {
      if (!isSafeToken(target.toolAgentId)) return Promise.reject(new Error(`${JSON.stringify(target.toolAgentId)} is not a tool name`));
      return withToolLock(target.toolAgentId, async () => {
        const record = await store.read(target.toolAgentId);
        if (record?.state !== "INSTALLED") throw new Error(`tool ${target.toolAgentId} is not installed here`);
        await placeToolFile(toolDirOf(options.toolsDir, target.toolAgentId), target.relativePath, sourceFile);
        if (target.serviceName && (options.platform ?? process.platform) === "linux") {
          await runToolCommand("systemctl", ["restart", target.serviceName], { cwd: "/", timeoutMs: 60_000 });
        }
      });
    },
    updatePolicy(next) {
      policy = { ...policy, ...next };
    },
  };
}
