import type { NatsConnection } from "@nats-io/transport-node";
import {
  type CommandDesk,
  type CommandOutcome,
  type CommandRouteHandle,
  done,
  reject,
  retryAfter,
  retryWithBackoff,
} from "../capability/index.ts";
import {
  EventType,
  type InstalledAgentMessage,
  machineFeeds,
  machineSubjects,
  type OsName,
  ToolInstallationMessage,
  toolUpdateFeed,
} from "../contracts/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Clock, KeyedSerialQueue, Logger } from "../runtime/index.ts";
import { removeAbandonedTemporaries, sleepOn } from "../runtime/index.ts";
import type { CommandTrust } from "../trust/index.ts";
import { reportedToolAgentId, toolAgentIdRefusal } from "./command-refusal.ts";
import { type InstalledTool, installTool, recoverToolDir, ToolInstallError, uninstallTool } from "./installer.ts";
import { removeLegacyUpdateConsumers } from "./legacy-update-consumers.ts";
import type { OpenFrameArguments } from "./placeholders.ts";
import type { ServiceState } from "./service-state.ts";
import type { ToolRecords } from "./tool-records.ts";
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

const DEFAULT_MAX_UNPACKED_BYTES = 64 * 1024 * 1024;

export interface ToolCommandsOptions {
  readonly machineId: string;
  readonly toolsDir: string;
  readonly os: OsName;
  readonly records: ToolRecords;
  /** One command per tool at a time, several tools side by side (the liveness checks share it). */
  readonly lock: KeyedSerialQueue;
  readonly sink: EventSink;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly serverUrl: string;
  readonly openframe?: OpenFrameArguments | undefined;
  readonly policy: ToolPolicy;
  readonly commandTimeoutMs: number;
  readonly serviceState: (serviceName: string) => Promise<ServiceState>;
  readonly serviceStartTimeoutMs: number;
  readonly download: { readonly stallTimeoutMs: number; readonly deadlineMs: number };
  readonly diskReserveBytes: number;
  readonly trust?: CommandTrust | undefined;
  readonly commands: CommandDesk;
  /** A tool was just installed: its liveness and id are wanted now. */
  readonly installed: (toolAgentId: string) => void;
}

/**
 * The platform's commands on tools, as the command desk hands them over: install and uninstall on
 * `machine.{id}.tool-installation` / `.tool-uninstall` (stream TOOL_INSTALLATION, the machine's
 * feeds), and OpenFrame's fleet-wide updates on `machine.all.tool.{toolAgentId}.update` (stream
 * TOOL_UPDATE, one feed per installed tool). One command per tool at a time, several tools side by
 * side: a tool whose download hangs holds up only its own later commands. The same version already
 * installed is done at once, and so is a command stored again after its work finished. A retryable
 * failure is taken again from the inbox; the platform sees FAILED only when it is final.
 */
export class ToolCommands {
  readonly #options: ToolCommandsOptions;
  readonly #route: CommandRouteHandle;
  readonly #updateRoute: CommandRouteHandle;
  /** Aborts downloads and unpacks in progress when the agent stops. */
  readonly #stopping = new AbortController();
  #policy: ToolPolicy;
  #connection: NatsConnection | null = null;
  #attached = false;

  constructor(options: ToolCommandsOptions) {
    this.#options = options;
    this.#policy = { ...options.policy };
    const feeds = machineFeeds(options.machineId);
    const toolUninstall = machineSubjects(options.machineId).toolUninstall;
    const { records, lock, logger } = options;
    this.#route = options.commands.route<ToolInstallationMessage>({
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
          return toolAgentId ? records.refusedStatus(toolAgentId, reason) : null;
        },
        handle: (message, delivery) => {
          const uninstalling = delivery.subject === toolUninstall;
          return lock
            .run(message.toolAgentId, async () => {
              await (uninstalling
                ? this.#uninstall(message, delivery.causationId)
                : this.#install(message, delivery.causationId));
              return done();
            })
            .catch((error: unknown) => this.#outcomeOfFailure(error, message.toolAgentId, uninstalling));
        },
      },
    });
    // Fleet-wide updates of every tool (OpenFrame's ToolAgentUpdateMessage), through one consumer of
    // this machine's, so an update published while it was offline still arrives.
    // One feed per installed tool (contracts: toolUpdateFeed), added when it is installed, removed with it.
    this.#updateRoute = options.commands.route<FleetToolUpdate>({
      feeds: [],
      ...(options.trust ? { trust: options.trust } : {}),
      parallel: 16,
      handler: toolUpdateHandler(
        {
          read: (toolAgentId) => records.read(toolAgentId),
          underLock: (toolAgentId, work) => lock.run(toolAgentId, work),
          alreadyHandled: (record, causationId) => records.alreadyHandled(record, causationId),
          install: (message, causationId) => this.#install(message, causationId, true),
          fail: (message, current, reason, causationId) => records.recordFailure(message, current, reason, causationId),
          outcomeOfFailure: (error, toolAgentId) => this.#outcomeOfFailure(error, toolAgentId, false),
        },
        logger,
      ),
    });
  }

  /**
   * Cleans up installs cut short (the command desk reports one a crash cut short FAILED, never run
   * again; one a stop cut short is taken again), and follows each installed tool's updates.
   */
  async start(): Promise<void> {
    const { toolsDir, records, logger } = this.#options;
    // A state file being replaced when the agent was killed leaves its sibling behind.
    const abandoned = await removeAbandonedTemporaries(toolsDir);
    if (abandoned.length > 0) logger.info({ removed: abandoned }, "removed half-written tool records left by a crash");
    for (const record of await records.list()) {
      // Each installed tool's fleet-wide updates (a failed update leaves the tool INSTALLED).
      if (record.state === "INSTALLED") this.#updateRoute.addFeed(toolUpdateFeed(record.toolAgentId));
      if (record.state !== "DOWNLOADING" && record.state !== "INSTALLING") continue;
      await recoverToolDir(toolsDir, record.toolAgentId, record.state === "INSTALLING");
      logger.warn(
        { toolAgentId: record.toolAgentId, state: record.state },
        "tool install was cut short; cleaned up (a command cut short by a crash is reported FAILED; one cut short by a stop is taken again)",
      );
    }
  }

  /** The link is up (downloads from the object store use it); earlier versions' per-tool update consumers are removed, once. */
  attach(connection: NatsConnection): void {
    this.#connection = connection;
    if (this.#attached || this.#stopping.signal.aborted) return;
    this.#attached = true;
    const { records, machineId, toolsDir, logger, clock } = this.#options;
    void records
      .list()
      .then((list) =>
        removeLegacyUpdateConsumers({
          connection,
          machineId,
          toolAgentIds: list.map((record) => record.toolAgentId),
          toolsDir,
          logger,
          clock,
        }),
      )
      .catch((error: unknown) => logger.warn({ err: error }, "cannot check for old per-tool update consumers"));
  }

  /** Downloads and unpacks in progress end now (SIGTERM must not wait on a link that hangs); no command is taken after. */
  async stop(): Promise<void> {
    this.#stopping.abort(new Error("the agent is stopping"));
    await Promise.all([this.#route.stop(), this.#updateRoute.stop()]);
  }

  updatePolicy(next: Partial<ToolPolicy>): void {
    this.#policy = { ...this.#policy, ...next };
  }

  /** `evenIfInstalled`: the work is done though this version is installed (an update of its assets). */
  async #install(incoming: ToolInstallationMessage, causationId: string, evenIfInstalled = false): Promise<void> {
    const { records, logger } = this.#options;
    const current = await records.read(incoming.toolAgentId);
    if (records.alreadyHandled(current, causationId)) return;
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
      await records.remember(current, causationId);
      await records.report(message, "INSTALLED", null, causationId);
      return;
    }
    await records.save(message, "DOWNLOADING", null, current?.mainFile ?? null, current);
    await records.report(message, "DOWNLOADING", null, causationId);
    try {
      const installed = await this.#installFiles(message, async () => {
        await records.save(message, "INSTALLING", null, current?.mainFile ?? null, current);
        await records.report(message, "INSTALLING", null, causationId);
      });
      await records.save(message, "INSTALLED", null, installed.mainFile, current, causationId, installed.downloads);
      this.#updateRoute.addFeed(toolUpdateFeed(message.toolAgentId));
      await records.report(message, "INSTALLED", null, causationId, installed.downloads);
      await this.#announce(message, installed, causationId);
      // Its id and liveness right away, not at the next round (queued behind this install's lock).
      this.#options.installed(message.toolAgentId);
    } catch (error) {
      const retryable = (error instanceof ToolInstallError && error.retryable) || this.#stopping.signal.aborted;
      const reason = error instanceof Error ? error.message : String(error);
      // A retryable failure is taken again from the inbox; the platform sees FAILED only when it is final.
      // Cut short by a stop, the record stays DOWNLOADING: the next start cleans up after it.
      if (!retryable) await records.recordFailure(message, current, reason, causationId);
      throw error;
    }
  }

  /** Downloads, unpacks and runs the installer; a SERVICE tool's service must come up. */
  #installFiles(message: ToolInstallationMessage, onInstalling: () => Promise<void>): Promise<InstalledTool> {
    const options = this.#options;
    const policy = this.#policy;
    return installTool(message, {
      toolsDir: options.toolsDir,
      os: options.os,
      machineId: options.machineId,
      serverUrl: options.serverUrl,
      connection: this.#connection,
      policy: {
        allowMissingChecksum: policy.allowMissingChecksum,
        allowedDownloadHosts: policy.allowedDownloadHosts ?? [],
        maxDownloadBytes: policy.maxDownloadBytes,
        maxUnpackedBytes: policy.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
      },
      ...(options.openframe ? { openframe: options.openframe } : {}),
      diskReserveBytes: options.diskReserveBytes,
      download: options.download,
      clock: options.clock,
      signal: this.#stopping.signal,
      commandTimeoutMs: options.commandTimeoutMs,
      verify: async (main) => {
        if (main.installationType === "SERVICE" && main.serviceName)
          await this.#serviceComesUp(message.toolAgentId, main.serviceName);
      },
      onInstalling,
    });
  }

  /** Waits (polling every 500 ms, at most `serviceStartTimeoutMs`) for the tool's service to run. */
  async #serviceComesUp(toolAgentId: string, serviceName: string): Promise<void> {
    const { clock, logger, serviceState } = this.#options;
    const deadline = clock.monotonicMs() + this.#options.serviceStartTimeoutMs;
    for (;;) {
      const state = await serviceState(serviceName);
      if (state === "active") return;
      if (state === "unknown") {
        logger.warn(
          { toolAgentId, serviceName },
          "cannot check the tool's service here (no service manager); installed without that check",
        );
        return;
      }
      if (clock.monotonicMs() > deadline)
        throw new ToolInstallError(`tool ${toolAgentId}: service ${serviceName} is not running after install`, false);
      await sleepOn(clock, 500);
    }
  }

  /** The tool is installed: the platform hears of it as an installed agent of its own. */
  async #announce(message: ToolInstallationMessage, installed: InstalledTool, causationId: string): Promise<void> {
    const { logger, sink, machineId } = this.#options;
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
  }

  async #uninstall(message: ToolInstallationMessage, causationId: string): Promise<void> {
    const { records, logger, toolsDir, machineId, serverUrl, commandTimeoutMs, openframe } = this.#options;
    const current = await records.read(message.toolAgentId);
    if (records.alreadyHandled(current, causationId)) return;
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
      { toolsDir, machineId, serverUrl, commandTimeoutMs, ...(openframe ? { openframe } : {}) },
    );
    await records.save(known, "UNINSTALLED", null, null, current, causationId);
    this.#updateRoute.removeFeed(toolUpdateFeed(message.toolAgentId).key);
    await records.report(known, "UNINSTALLED", null, causationId);
    logger.info({ toolAgentId: message.toolAgentId }, "tool uninstalled");
  }

  /** What the command desk does next with a command whose work threw: take it again later, or settle it. */
  #outcomeOfFailure(error: unknown, toolAgentId: string, uninstalling: boolean): CommandOutcome {
    const { logger } = this.#options;
    if (this.#stopping.signal.aborted) {
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
  }
}
