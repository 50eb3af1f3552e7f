import type { NatsConnection } from "@nats-io/transport-node";
import type { CommandDesk } from "../capability/index.ts";
import { DEFAULT_DOWNLOAD_DEADLINE_MS, DEFAULT_STALL_TIMEOUT_MS } from "../download/index.ts";
import type { EventSink } from "../events/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { KeyedSerialQueue, osNameOf } from "../runtime/index.ts";
import type { CommandTrust } from "../trust/index.ts";
import { ToolLivenessMonitor } from "./liveness-monitor.ts";
import type { OpenFrameArguments } from "./placeholders.ts";
import { type PushedToolFile, placePushedToolFile } from "./pushed-files.ts";
import { type ServiceState, serviceStateReader } from "./service-state.ts";
import { ToolCommands, type ToolPolicy } from "./tool-commands.ts";
import { ToolRecords } from "./tool-records.ts";
import type { ToolRecord } from "./tool-state.ts";

/** Free space unpacking leaves on the tools' disk by default: the outbox's own default room. */
const DEFAULT_DISK_RESERVE_BYTES = 256 * 1024 * 1024;

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
  writeFile(target: PushedToolFile, sourceFile: string): Promise<void>;
}

/**
 * The platform's tools on this machine, three jobs sharing the tools' records and one lock per
 * tool: the commands that install, update and remove them (tool-commands.ts), the watch on those
 * installed (liveness-monitor.ts), and files pushed into their folders (pushed-files.ts).
 */
export function createToolManager(options: ToolManagerOptions): ToolManager {
  const { toolsDir, clock, logger, sink } = options;
  const platform = options.platform ?? "linux";
  const serviceState = options.serviceState ?? serviceStateReader(platform);
  const records = new ToolRecords({ toolsDir, sink, clock, logger });
  const lock = new KeyedSerialQueue(options.maxParallelInstalls ?? 3);
  const monitor = new ToolLivenessMonitor({
    toolsDir,
    records,
    lock,
    platform,
    serviceState,
    sink,
    clock,
    logger,
    checkIntervalMs: options.checkIntervalMs ?? 60_000,
  });
  const commands = new ToolCommands({
    machineId: options.machineId,
    toolsDir,
    os: osNameOf(platform),
    records,
    lock,
    sink,
    clock,
    logger,
    serverUrl: options.serverUrl,
    openframe: options.openframe,
    policy: options.policy,
    commandTimeoutMs: options.commandTimeoutMs ?? 10 * 60_000,
    serviceState,
    serviceStartTimeoutMs: options.serviceStartTimeoutMs ?? 30_000,
    download: {
      stallTimeoutMs: options.download?.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
      deadlineMs: options.download?.deadlineMs ?? DEFAULT_DOWNLOAD_DEADLINE_MS,
    },
    diskReserveBytes: options.diskReserveBytes ?? DEFAULT_DISK_RESERVE_BYTES,
    trust: options.trust,
    commands: options.commands,
    installed: (toolAgentId) => monitor.checkSoon(toolAgentId),
  });
  return {
    async start() {
      await commands.start();
      monitor.start();
    },
    attach: (connection) => commands.attach(connection),
    async stop() {
      monitor.stop();
      await commands.stop();
      await lock.idle();
    },
    list: () => records.list(),
    writeFile: (target, sourceFile) => placePushedToolFile(target, sourceFile, { toolsDir, records, lock, platform }),
    updatePolicy: (next) => commands.updatePolicy(next),
  };
}
