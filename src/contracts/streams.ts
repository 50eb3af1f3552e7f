import { PARTITIONED_STREAM, partitionTransform, type SubjectTransform } from "./partitions.ts";

/**
 * The JetStream streams the platform keeps (docs/DESIGN.md). The agent never creates them in
 * production; `edge-agent dev-setup` does, for development and tests. Subjects never overlap
 * across streams: JetStream refuses that.
 */
export interface StreamDefinition {
  readonly name: string;
  readonly subjects: readonly string[];
  /**
   * Commands from the platform (read by agents): such a stream allows per-message TTL (`Nats-TTL`,
   * nats-server 2.11+), so a command can expire before a machine long offline takes it, and in the
   * account layout it is mirrored into the account devices read from (DESIGN, "Accounts").
   */
  readonly commands?: true;
  /** The oldest message it keeps, in seconds (JetStream's `max_age`); none: kept until the platform removes it. */
  readonly maxAgeSeconds?: number;
}

/** The streams agents read commands from (also the names of their mirrors in the device-view account). */
export const COMMAND_STREAMS = {
  toolInstallation: "TOOL_INSTALLATION",
  toolUpdate: "TOOL_UPDATE",
  clientUpdate: "CLIENT_UPDATE",
  configPush: "CONFIG_PUSH",
  clientUninstall: "CLIENT_UNINSTALL",
  tasks: "TASKS",
  fleetTasks: "FLEET_TASKS",
} as const;

export const PLATFORM_STREAMS: readonly StreamDefinition[] = [
  { name: "TOOL_INSTALLATION", subjects: ["machine.*.tool-installation", "machine.*.tool-uninstall"], commands: true },
  { name: "TOOL_CONNECTIONS", subjects: ["machine.*.tool-connection"] },
  { name: "INSTALLED_AGENTS", subjects: ["machine.*.installed-agent"] },
  { name: "CLIENT_UPDATE", subjects: ["machine.*.client-update"], commands: true },
  { name: "CLIENT_UNINSTALL", subjects: ["machine.*.client-uninstall"], commands: true },
  { name: "TOOL_UPDATE", subjects: ["machine.all.tool.*.update"], commands: true },
  { name: "MACHINE_HOSTNAME", subjects: ["machine.*.hostname"] },
  { name: "CLIENT_CONNECTIONS", subjects: ["machine.*.client-connection"] },
  { name: "TELEMETRY", subjects: ["machine.*.telemetry", "machine.*.outbox"] },
  { name: "INVENTORY", subjects: ["machine.*.inventory"] },
  { name: "TOOL_STATUS", subjects: ["machine.*.tool-installation.status"] },
  { name: "CONFIG_STATUS", subjects: ["machine.*.config.status"] },
  { name: "CONFIG_PUSH", subjects: ["machine.*.download-configuration"], commands: true },
  { name: "CLIENT_UPDATE_STATUS", subjects: ["machine.*.client-update.status"] },
  { name: "CLIENT_UNINSTALL_STATUS", subjects: ["machine.*.client-uninstall.status"] },
  { name: "TASKS", subjects: ["machine.*.task", "machine.*.task.cancel"], commands: true },
  // Only fleet-wide subjects: agents read it in order by direct get, which can ask for any message of a stream.
  { name: "FLEET_TASKS", subjects: ["machine.all.fleet-task", "machine.all.fleet-task.cancel"], commands: true },
  // Output is for following a task live, not a record (its end is): a week, never bridged to Kafka.
  { name: "TASK_OUTPUT", subjects: ["machine.*.task.output"], maxAgeSeconds: 7 * 24 * 3_600 },
  { name: "TASK_RESULTS", subjects: ["machine.*.task.result"] },
];

/** The event streams the bridge reads device state from (names above). */
export const DEVICE_STATE_STREAMS = { connections: "CLIENT_CONNECTIONS", inventory: "INVENTORY" } as const;

/** The streams of the machines' task output and ends (names above): what `edge-agent task` follows. */
export const TASK_EVENT_STREAMS = { output: "TASK_OUTPUT", results: "TASK_RESULTS" } as const;

/** Two minutes at least, per docs/DESIGN.md, so a redelivery after a reconnect is still deduplicated. */
export const STREAM_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

/** What a stream of ours is made with (dev-setup and the tests), as nats-server's StreamConfig fields. */
export interface WantedStreamConfig {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly storage: "file";
  readonly duplicate_window: number;
  /** Command streams: their newest message per subject is read by direct get (command-feeds.ts). */
  readonly allow_direct?: true;
  /** Command streams on nats-server 2.11+: a command may carry its own `Nats-TTL`. */
  readonly allow_msg_ttl?: true;
  /** Nanoseconds; only on streams that keep their messages for a while (StreamDefinition.maxAgeSeconds). */
  readonly max_age?: number;
  /** TELEMETRY when partitioned (partitions.ts): where the server stores each machine's events. */
  readonly subject_transform?: SubjectTransform;
}

export interface WantedStreamOptions {
  /** TELEMETRY's partitions (partitions.ts); 0 or 1: unpartitioned. Default 0. */
  readonly telemetryPartitions?: number;
}

/** Whether a nats-server version (e.g. "2.15.1") honours per-message TTL (2.11 and later). */
export function supportsMessageTtl(serverVersion: string): boolean {
  const [major = 0, minor = 0] = serverVersion.split(".").map((part) => Number.parseInt(part, 10));
  return major > 2 || (major === 2 && minor >= 11);
}

export function wantedStreamConfig(
  stream: StreamDefinition,
  serverVersion: string,
  options: WantedStreamOptions = {},
): WantedStreamConfig {
  const partitions = options.telemetryPartitions ?? 0;
  return {
    name: stream.name,
    subjects: [...stream.subjects],
    storage: "file",
    duplicate_window: STREAM_DUPLICATE_WINDOW_MS * 1_000_000,
    ...(stream.commands ? { allow_direct: true as const } : {}),
    ...(stream.commands && supportsMessageTtl(serverVersion) ? { allow_msg_ttl: true as const } : {}),
    ...(stream.maxAgeSeconds !== undefined ? { max_age: stream.maxAgeSeconds * 1_000_000_000 } : {}),
    ...(stream.name === PARTITIONED_STREAM && partitions >= 2
      ? { subject_transform: partitionTransform(partitions) }
      : {}),
  };
}
