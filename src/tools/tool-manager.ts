import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CommandDesk,
  type CommandOutcome,
  done,
  reject,
  retryAfter,
  retryWithBackoff,
} from "../capability/index.ts";
import {
  type DownloadRecord,
  EventType,
  type InstalledAgentMessage,
  isSafeToken,
  machineFeeds,
  machineSubjects,
  ToolInstallationMessage,
  type ToolInstallationStatus,
  toolUpdateFeed,
} from "../contracts/index.ts";
import { DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_STALL_TIMEOUT_MS } from "../download/index.ts";
import type { EventSink, OutgoingEvent } from "../events/index.ts";
import type { Logger } from "../runtime/index.ts";
import {
  type Cancel,
  type Clock,
  KeyedSerialQueue,
  osNameOf,
  removeAbandonedTemporaries,
  sleepOn,
  timersOf,
  truncateInput,
} from "../runtime/index.ts";
import type { CommandTrust } from "../trust/index.ts";
import { reportedToolAgentId, toolAgentIdRefusal } from "./command-refusal.ts";
import { checkToolAlive, readAgentToolId } from "./connection-monitor.ts";
import { connectionReports } from "./connection-report.ts";
import { installTool, placeToolFile, recoverToolDir, ToolInstallError, toolDirOf, uninstallTool } from "./installer.ts";
import { removeLegacyUpdateConsumers } from "./legacy-update-consumers.ts";
import type { OpenFrameArguments } from "./placeholders.ts";
import { runToolCommand } from "./run-command.ts";
import { type ServiceState, serviceStateReader } from "./service-state.ts";
import { rememberCommand, type ToolRecord, toolStore } from "./tool-state.ts";
import { toolStatusBody } from "./tool-status.ts";
import type { FleetToolUpdate } from "./tool-update.ts";
import { toolUpdateHandler } from "./update-handler.ts";

export interface ToolPolicy {
  /** Take downloads without a sha256 (HTTPS from `allowedDownloadHosts` only: download/unchecked-policy.ts). */
  readonly allowMissingChecksum: boolean;
  /** Hosts a download without a sha256 may come from (default none). */
  readonly allowedDownloadHosts?: readonly string[];
  readonly maxDownloadBytes: number;
  /** Most bytes one tool's archive may unpack to (default 64 MiB). */
  readonly maxUnpackedBytes?: number;
}

export const DEFAULT_MAX_UNPACKED_BYTES = 64 * 1024 * 1024;
/** Free space unpacking leaves on the tools' disk by default: the outbox's own default room. */
export const DEFAULT_DISK_RESERVE_BYTES = 256 * 1024 * 1024;

export interface ToolManagerOptions {
  readonly machineId: string;
  /** Tools live in `<toolsDir>/<toolAgentId>`, their state beside them. */
  readonly toolsDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sink: EventSink;
  /** For the `${client.serverUrl}` placeholder. */
  readonly serverUrl: string;
  /** For OpenFrame's `${client.openframeSecret}` and `${client.openframeTokenPath}` (settings `openframe.*`). */
  readonly openframe?: OpenFrameArguments;
  readonly policy: ToolPolicy;
  /** The OS the tools are for (default linux; the agent gives its host's). */
  readonly platform?: NodeJS.Platform;
  readonly commandTimeoutMs?: number;
  /** How often each installed tool is checked (default 60 s); a change is reported at once, and every tool hourly. */
  readonly checkIntervalMs?: number;
  /** Whether a service runs; default: systemd where it runs, else "unknown" (nothing to check with). */
  readonly serviceState?: (serviceName: string) => Promise<ServiceState>;
  /** How long a SERVICE tool's service has to come up after its install command (default 30 s). */
  readonly serviceStartTimeoutMs?: number;
  /** A download is given up after this long without a byte (default 30 s), or this long in all (default 10 min). */
  readonly download?: { readonly stallTimeoutMs?: number; readonly deadlineMs?: number };
  /** Free space an unpack must leave on the tools' disk (default 256 MiB). */
  readonly diskReserveBytes?: number;
  /** Tools installed side by side (default 3); one tool's commands always run one at a time. */
  readonly maxParallelInstalls?: number;
  /**
   * With a signing key, every tool command must be signed for the subject it came on with a rising
   * serial (a replayed or moved one is refused FAILED). Default: nothing checked.
   */
  readonly trust?: CommandTrust;
  /** Where tool commands are taken from (the agent's command desk). */
  readonly commands: CommandDesk;
}

export interface ToolManager {
  /** Cleans up installs cut short by a crash, and starts watching installed tools. */
  start(): Promise<void>;
  /** The link is up: earlier versions' per-tool update consumers are removed (once). */
  attach(connection: NatsConnection): void;
  stop(): Promise<void>;
  list(): Promise<ToolRecord[]>;
  updatePolicy(policy: Partial<ToolPolicy>): void;
  /**
   * Puts a pushed file into an installed tool's folder (atomically: copied beside, then renamed),
   * and restarts the tool's service when one is named. Throws a clear error when it cannot.
   */
  writeFile(
    target: { toolAgentId: string; relativePath: string; serviceName: string | null },
    sourceFile: string,
  ): Promise<void>;
}

/**
 * Installs and removes the platform's tools as it asks on `machine.{id}.tool-installation` and
 * `.tool-uninstall` (stream TOOL_INSTALLATION, durable consumer `machine_{id}_tool-installation_consumer`),
 * and updates installed ones on `machine.all.tool.{toolAgentId}.update` (stream TOOL_UPDATE, one
 * consumer per machine, `machine_{id}_tool-update_consumer`).
 * Ack on success; nak with backoff when trying again can help; term (after reporting FAILED) when
 * it cannot. One install at a time per tool, several tools side by side: a tool whose download
 * hangs holds up only its own later commands. The same version already installed is acked at
 * once, and so is a command delivered again after its work finished.
 */
export function createToolManager(options: ToolManagerOptions): ToolManager {
  const { machineId, logger, sink, clock } = options;
  const subjects = machineSubjects(machineId);
  const store = toolStore(options.toolsDir);
  const platform = options.platform ?? "linux";
  const os = osNameOf(platform);
  let policy = { ...options.policy };
  let connection: NatsConnection | null = null;
  let stopped = false;
  let attached = false;
  const serviceState = options.serviceState ?? serviceStateReader(platform);
  const feeds = machineFeeds(machineId);
  const queue = new KeyedSerialQueue(options.maxParallelInstalls ?? 3);
  const withToolLock = <T>(toolAgentId: string, work: () => Promise<T>): Promise<T> => queue.run(toolAgentId, work);
  /** Aborts downloads and unpacks in progress when the agent stops. */
  const stopping = new AbortController();

  const statusBody = (
    message: ToolInstallationMessage,
    state: ToolInstallationStatus["state"],
    error: string | null,
    downloads?: readonly DownloadRecord[],
  ): ToolInstallationStatus => toolStatusBody(message, state, error, new Date(clock.now()).toISOString(), downloads);
  const report = async (
    message: ToolInstallationMessage,
    state: ToolInstallationStatus["state"],
    error: string | null,
    causationId: string,
    downloads?: readonly DownloadRecord[],
  ): Promise<void> => {
    await sink.emit({
      type: EventType.toolInstallationStatus,
      body: statusBody(message, state, error, downloads),
      causationId,
    });
  };

  /** `commandId`: the command whose work this record finishes, remembered to recognise it again. */
  const save = (
    message: ToolInstallationMessage,
    state: ToolRecord["state"],
    error: string | null,
    mainFile: string | null,
    previous: ToolRecord | null,
    commandId: string | null = null,
    downloads: readonly DownloadRecord[] | null = null,
  ): Promise<void> =>
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
      commandIds: rememberCommand(previous?.commandIds ?? [], commandId),
      // What is installed: the files of the version that last finished installing.
      downloads: downloads ? [...downloads] : (previous?.downloads ?? []),
    });

  /** True (and logged) when `current` says this command's work already finished. */
  const alreadyHandled = (current: ToolRecord | null, causationId: string): boolean => {
    if (!current?.commandIds.includes(causationId)) return false;
    logger.info(
      { toolAgentId: current.toolAgentId, causationId },
      "command stored again after its work finished: settled without doing it twice",
    );
    return true;
  };

  /**
   * Reports a command on a tool FAILED for good. A failed update leaves the working version in
   * place: its record keeps saying INSTALLED, with the failure as its error.
   */
  const recordFailure = async (
    message: ToolInstallationMessage,
    current: ToolRecord | null,
    reason: string,
    causationId: string,
  ): Promise<void> => {
    if (current?.state === "INSTALLED") {
      const version = truncateInput(message.version ?? "?");
      await store.write({
        ...current,
        error: `update to ${version} failed: ${reason}`,
        updatedAt: new Date(clock.now()).toISOString(),
        commandIds: rememberCommand(current.commandIds, causationId),
      });
    } else await save(message, "FAILED", reason, null, current, causationId);
    await report(message, "FAILED", reason, causationId);
  };

  /** `evenIfInstalled`: the work is done though this version is installed (an update of its assets). */
  const install = async (
    incoming: ToolInstallationMessage,
    causationId: string,
    evenIfInstalled = false,
  ): Promise<void> => {
    const current = await store.read(incoming.toolAgentId);
    if (alreadyHandled(current, causationId)) return;
    // The tool stays the type it was installed as, whatever a later command leaves out.
    const message = incoming.toolType ? incoming : { ...incoming, toolType: current?.message.toolType ?? null };
    if (
      current?.state === "INSTALLED" &&
      current.version === (message.version ?? null) &&
      !message.reinstall &&
      !evenIfInstalled
    ) {
      logger.info(
        { toolAgentId: message.toolAgentId, version: message.version },
        "tool already installed at this version",
      );
      await store.write({ ...current, commandIds: rememberCommand(current.commandIds, causationId) });
      await report(message, "INSTALLED", null, causationId);
      return;
    }
    await save(message, "DOWNLOADING", null, current?.mainFile ?? null, current);
    await report(message, "DOWNLOADING", null, causationId);
    try {
      const installed = await installTool(message, {
        toolsDir: options.toolsDir,
        os,
        machineId,
        serverUrl: options.serverUrl,
        connection,
        policy: {
          allowMissingChecksum: policy.allowMissingChecksum,
          allowedDownloadHosts: policy.allowedDownloadHosts ?? [],
          maxDownloadBytes: policy.maxDownloadBytes,
          maxUnpackedBytes: policy.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
        },
        ...(options.openframe ? { openframe: options.openframe } : {}),
        diskReserveBytes: options.diskReserveBytes ?? DEFAULT_DISK_RESERVE_BYTES,
        download: {
          stallTimeoutMs: options.download?.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
          deadlineMs: options.download?.deadlineMs ?? DEFAULT_DOWNLOAD_DEADLINE_MS,
        },
        clock,
        signal: stopping.signal,
        commandTimeoutMs: options.commandTimeoutMs ?? 10 * 60_000,
        verify: async (main) => {
          if (main.installationType !== "SERVICE" || !main.serviceName) return;
          const serviceName = main.serviceName;
          const deadline = clock.monotonicMs() + (options.serviceStartTimeoutMs ?? 30_000);
          for (;;) {
            const state = await serviceState(serviceName);
            if (state === "active") return;
            if (state === "unknown") {
              logger.warn(
                { toolAgentId: message.toolAgentId, serviceName },
                "cannot check the tool's service here (no service manager); installed without that check",
              );
              return;
            }
            if (clock.monotonicMs() > deadline)
              throw new ToolInstallError(
                `tool ${message.toolAgentId}: service ${serviceName} is not running after install`,
                false,
              );
            await sleepOn(clock, 500);
          }
        },
        onInstalling: async () => {
          await save(message, "INSTALLING", null, current?.mainFile ?? null, current);
          await report(message, "INSTALLING", null, causationId);
        },
      });
      await save(message, "INSTALLED", null, installed.mainFile, current, causationId, installed.downloads);
      updateRoute.addFeed(toolUpdateFeed(message.toolAgentId));
      await report(message, "INSTALLED", null, causationId, installed.downloads);
      const unverified = installed.downloads.filter((file) => !file.verified);
      if (unverified.length > 0)
        logger.warn(
          { toolAgentId: message.toolAgentId, unverified },
          "tool installed from downloads without a sha256 (allowed host, HTTPS): the sha256 received is reported",
        );
      const announcement: InstalledAgentMessage = {
        machineId,
        agentType: message.toolAgentId,
        version: message.version ?? "unknown",
      };
      await sink.emit({ type: EventType.installedAgent, body: announcement, ...(causationId ? { causationId } : {}) });
      logger.info({ toolAgentId: message.toolAgentId, version: message.version }, "tool installed");
      // Its id and liveness right away, not at the next round (queued behind this install's lock).
      reported.delete(message.toolAgentId);
      void checkTools().catch((error: unknown) => logger.warn({ err: error }, "tool check failed"));
    } catch (error) {
      const retryable = (error instanceof ToolInstallError && error.retryable) || stopping.signal.aborted;
      const reason = error instanceof Error ? error.message : String(error);
      // A retryable failure is taken again from the inbox; the platform sees FAILED only when it is final.
      // Cut short by a stop, the record stays DOWNLOADING: the next start cleans up after it.
      if (!retryable) await recordFailure(message, current, reason, causationId);
      throw error;
    }
  };

  const uninstall = async (message: ToolInstallationMessage, causationId: string): Promise<void> => {
    const current = await store.read(message.toolAgentId);
    if (alreadyHandled(current, causationId)) return;
    const known = current?.message ?? message;
    await uninstallTool(
      {
        ...known,
        uninstallationCommandArgs:
          message.uninstallationCommandArgs.length > 0
            ? message.uninstallationCommandArgs
            : known.uninstallationCommandArgs,
      },
      current?.mainFile ?? null,
      {
        toolsDir: options.toolsDir,
        machineId,
        serverUrl: options.serverUrl,
        commandTimeoutMs: options.commandTimeoutMs ?? 10 * 60_000,
        ...(options.openframe ? { openframe: options.openframe } : {}),
      },
    );
    await save(known, "UNINSTALLED", null, null, current, causationId);
    updateRoute.removeFeed(toolUpdateFeed(message.toolAgentId).key);
    await report(known, "UNINSTALLED", null, causationId);
    logger.info({ toolAgentId: message.toolAgentId }, "tool uninstalled");
  };

  /** What the command desk does next with a command whose work threw: take it again later, or settle it. */
  const outcomeOfFailure = (error: unknown, toolAgentId: string, uninstalling: boolean): CommandOutcome => {
    if (stopping.signal.aborted) {
      logger.info({ toolAgentId }, "tool work cut short by the stop; taken again at the next start");
      return retryAfter(0);
    }
    if (error instanceof ToolInstallError && error.retryable) {
      logger.warn({ toolAgentId, err: error }, "tool install will be retried");
      return retryWithBackoff();
    }
    // FAILED is already reported by the work itself.
    logger.error({ toolAgentId, err: error }, uninstalling ? "tool uninstall failed" : "tool install failed");
    return reject(error instanceof Error ? error.message : String(error));
  };

  const refusedStatus = (toolAgentId: string, reason: string): OutgoingEvent => ({
    type: EventType.toolInstallationStatus,
    body: statusBody(
      {
        toolAgentId,
        downloadConfigurations: [],
        assets: [],
        installationCommandArgs: [],
        runCommandArgs: [],
        toolAgentIdCommandArgs: [],
        uninstallationCommandArgs: [],
        reinstall: false,
      },
      "FAILED",
      reason,
    ),
  });

  const route = options.commands.route<ToolInstallationMessage>({
    // Fleet-wide updates have a route of their own (below), with one feed per installed tool.
    feeds: [feeds.toolInstallation, feeds.toolUninstall],
    ...(options.trust ? { trust: options.trust } : {}),
    // Several tools side by side (the keyed queue keeps one tool's commands in order).
    parallel: 16,
    handler: {
      what: "tool command",
      schema: ToolInstallationMessage,
      refusalOf(message) {
        const refusal = toolAgentIdRefusal(message.toolAgentId);
        return refusal ? { reason: refusal, report: true } : null;
      },
      rejection(reason, raw) {
        const toolAgentId = reportedToolAgentId(raw);
        return toolAgentId ? refusedStatus(toolAgentId, reason) : null;
      },
      async handle(message, delivery) {
        const uninstalling = delivery.subject === subjects.toolUninstall;
        return withToolLock(message.toolAgentId, async () => {
          await (uninstalling ? uninstall(message, delivery.causationId) : install(message, delivery.causationId));
          return done();
        }).catch((error: unknown) => outcomeOfFailure(error, message.toolAgentId, uninstalling));
      },
    },
  });

  // Fleet-wide updates of every tool (OpenFrame's ToolAgentUpdateMessage), through one consumer of
  // this machine's, so an update published while it was offline still arrives.
  // One feed per installed tool (contracts: toolUpdateFeed), added when it is installed, removed with it.
  const updateRoute = options.commands.route<FleetToolUpdate>({
    feeds: [],
    ...(options.trust ? { trust: options.trust } : {}),
    parallel: 16,
    handler: toolUpdateHandler(
      {
        read: (toolAgentId) => store.read(toolAgentId),
        underLock: withToolLock,
        alreadyHandled,
        install: (message, causationId) => install(message, causationId, true),
        fail: recordFailure,
        outcomeOfFailure: (error, toolAgentId) => outcomeOfFailure(error, toolAgentId, false),
      },
      logger,
    ),
  });

  /** Last reported liveness per tool, and when: a change goes out at once, the same state hourly. */
  const reported = new Map<string, { state: string; atMs: number }>();
  const checkIntervalMs = options.checkIntervalMs ?? 60_000;
  let cancelCheck: Cancel | null = null;
  let checkFailures = 0;

  const checkTools = async (): Promise<void> => {
    for (const record of await store.list()) {
      if (record.state !== "INSTALLED" || stopped) continue;
      await withToolLock(record.toolAgentId, async () => {
        const current = await store.read(record.toolAgentId);
        if (current?.state !== "INSTALLED") return;
        const toolDir = toolDirOf(options.toolsDir, current.toolAgentId);
        let agentToolId = current.agentToolId;
        if (agentToolId === null) {
          agentToolId = await readAgentToolId(current, toolDir).catch((error: unknown) => {
            logger.warn({ toolAgentId: current.toolAgentId, err: error }, "cannot read the tool's own id yet");
            return null;
          });
        }
        const liveness = await checkToolAlive(current, toolDir, platform, serviceState);
        if (agentToolId !== current.agentToolId || liveness.state !== current.connection) {
          await store.write({ ...current, agentToolId, connection: liveness.state });
        }
        const last = reported.get(current.toolAgentId);
        if (last && last.state === liveness.state && clock.monotonicMs() - last.atMs < 3_600_000) return;
        const reports = connectionReports(current, liveness, agentToolId, new Date(clock.now()).toISOString());
        await sink.emit({ type: EventType.toolInstallationStatus, body: reports.status });
        if (reports.connection) await sink.emit({ type: EventType.toolConnection, body: reports.connection });
        else if (reports.withheld)
          logger.warn(
            { toolAgentId: current.toolAgentId },
            `tool runs, but OpenFrame is not told (no tool-connection message): ${reports.withheld}`,
          );
        reported.set(current.toolAgentId, { state: liveness.state, atMs: clock.monotonicMs() });
      });
    }
  };

  const scheduleCheck = (delayMs: number): void => {
    if (stopped) return;
    cancelCheck = timersOf(clock).after(delayMs, () => {
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
    });
  };

  return {
    async start() {
      // A state file being replaced when the agent was killed leaves its sibling behind.
      const abandoned = await removeAbandonedTemporaries(options.toolsDir);
      if (abandoned.length > 0)
        logger.info({ removed: abandoned }, "removed half-written tool records left by a crash");
      for (const record of await store.list()) {
        // Each installed tool's fleet-wide updates (a failed update leaves the tool INSTALLED).
        if (record.state === "INSTALLED") updateRoute.addFeed(toolUpdateFeed(record.toolAgentId));
        if (record.state !== "DOWNLOADING" && record.state !== "INSTALLING") continue;
        await recoverToolDir(options.toolsDir, record.toolAgentId, record.state === "INSTALLING");
        logger.warn(
          { toolAgentId: record.toolAgentId, state: record.state },
          "tool install was cut short; cleaned up (a command cut short by a crash is reported FAILED; one cut short by a stop is taken again)",
        );
      }
      scheduleCheck(0);
    },
    attach(nc) {
      connection = nc;
      if (attached || stopped) return;
      attached = true;
      void store
        .list()
        .then((records) =>
          removeLegacyUpdateConsumers({
            connection: nc,
            machineId,
            toolAgentIds: records.map((record) => record.toolAgentId),
            toolsDir: options.toolsDir,
            logger,
            clock,
          }),
        )
        .catch((error: unknown) => logger.warn({ err: error }, "cannot check for old per-tool update consumers"));
    },
    async stop() {
      stopped = true;
      cancelCheck?.();
      // Downloads and unpacks in progress end now (SIGTERM must not wait on a link that hangs).
      stopping.abort(new Error("the agent is stopping"));
      await Promise.all([route.stop(), updateRoute.stop()]);
      await queue.idle();
    },
    list: () => store.list(),
    writeFile(target, sourceFile) {
      if (!isSafeToken(target.toolAgentId))
        return Promise.reject(new Error(`${JSON.stringify(target.toolAgentId)} is not a tool name`));
      return withToolLock(target.toolAgentId, async () => {
        const record = await store.read(target.toolAgentId);
        if (record?.state !== "INSTALLED") throw new Error(`tool ${target.toolAgentId} is not installed here`);
        await placeToolFile(toolDirOf(options.toolsDir, target.toolAgentId), target.relativePath, sourceFile);
        if (target.serviceName && platform === "linux") {
          await runToolCommand("systemctl", ["restart", target.serviceName], { cwd: "/", timeoutMs: 60_000 });
        }
      });
    },
    updatePolicy(next) {
      policy = { ...policy, ...next };
    },
  };
}
