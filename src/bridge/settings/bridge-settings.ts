import { hostname } from "node:os";
import * as z from "zod";
import { DEFAULT_TOPICS, isSafeToken } from "../../contracts/index.ts";
import { parseMetricsListen } from "../../metrics-kit/index.ts";
import { LOG_LEVELS } from "../../runtime/index.ts";

/**
 * The companion bridge's settings, resolved like the agent's: defaults < `settings.json` in the
 * config dir < `EDGE_BRIDGE_*` environment < flags. README, "The companion bridge", lists them.
 */
const safeToken = (what: string) => z.string().refine(isSafeToken, `${what} must be letters, digits, '_' or '-' only`);

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "each broker must be host:port (e.g. kafka-1.example:9092)")
  .refine((entry) => Number(entry.slice(entry.lastIndexOf(":") + 1)) <= 65_535, "a port must be at most 65535");

const NatsAuth = z.object({
  user: z.string().optional(),
  password: z.string().optional(),
  token: z.string().optional(),
  nkeySeedFile: z.string().optional(),
  credsFile: z.string().optional(),
});
const NatsTls = z.object({
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
});

export const KafkaSaslMechanism = z.enum(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);

/**
 * Whose conventions the bridge follows where they differ from our stricter defaults: `edge` (ours)
 * or `openframe` (OpenFrame's platform reads the devices rows: its default tenant `oss`).
 */
export const BridgePlatform = z.enum(["edge", "openframe"]);
export type BridgePlatform = z.infer<typeof BridgePlatform>;

/** OpenFrame's own default tenant: every one of its Pinot queries filters on it. */
export const OPENFRAME_DEFAULT_TENANT = "oss";

export const BridgeSettings = z.object({
  natsServers: z.array(z.string()).min(1),
  auth: NatsAuth,
  tls: NatsTls,
  /**
   * A connection in the system account, for the server's own `$SYS` CONNECT/DISCONNECT events:
   * the fastest word that a machine went away. Optional: heartbeats decide without it.
   */
  systemAccount: z.object({ natsServers: z.array(z.string()).min(1).optional(), auth: NatsAuth, tls: NatsTls }),
  /**
   * $SYS CONNECT/DISCONNECT are taken for the machine named by the connection name instead of the
   * authenticated identity: for development setups where agents share one NATS user. Anyone who
   * can connect can then move any machine's presence; the bridge warns at start.
   */
  trustConnectionNames: z.boolean(),
  platform: BridgePlatform,
  /** Names this bridge's consumers, transactional ids, buckets and presence stream: two groups never meet. */
  group: safeToken("group"),
  /** This process among the group's instances (leases name it). */
  instanceId: safeToken("instanceId"),
  dataDir: z.string().min(1),
  configDir: z.string().min(1),
  logLevel: z.enum(LOG_LEVELS),
  kafka: z.object({
    brokers: z.array(hostPort).min(1, "at least one broker (host:port) is needed"),
    clientId: z.string().min(1),
    sasl: z.object({
      mechanism: KafkaSaslMechanism.optional(),
      username: z.string().optional(),
      password: z.string().optional(),
      /** The password read from this file (0600), so it stays out of the environment and the unit. */
      passwordFile: z.string().optional(),
    }),
    tls: z.object({
      enabled: z.boolean(),
      caFile: z.string().optional(),
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
      /** Name checked against the broker's certificate when it differs from the host dialled. */
      serverName: z.string().optional(),
    }),
    /**
     * Whether the shards' Kafka producers run in a thread of their own beside the main thread
     * (which reads NATS and makes the records): more events per second when the host has a core to
     * spare for it, at the cost of a second V8 heap (about 20 MB idle) and more CPU per event
     * (every batch is framed and copied across). Off: one thread does all (docs/bridge.md).
     */
    producerThread: z.boolean(),
    /** Partitions of the topics the bridge creates (existing topics keep theirs). */
    partitions: z.number().int().min(1).max(10_000),
    /** Replication of the topics it creates; -1 takes the broker's default.replication.factor. */
    replicationFactor: z
      .number()
      .int()
      .min(-1)
      .max(100)
      .refine((factor) => factor !== 0, "must be -1 (broker default) or at least 1"),
    /** A record larger than this goes to the dead-letter topic (keep it under the broker's message.max.bytes). */
    maxRecordBytes: z
      .number()
      .int()
      .min(1_024)
      .max(64 * 1024 * 1024),
  }),
  topics: z.object({
    devices: z.string().min(1),
    telemetry: z.string().min(1),
    events: z.string().min(1),
    inventory: z.string().min(1),
    taskResults: z.string().min(1),
    deadLetter: z.string().min(1),
    checkpoint: z.string().min(1),
  }),
  /** OpenFrame's tenant this fleet belongs to: `tenantId` of every devices row (see devicesTenantId). */
  tenantId: z.string().optional(),
  /** `organizationId` of a devices row when the machine has no organization tag. */
  organizationId: z.string().optional(),
  /** The tag whose value is a machine's organization. */
  organizationTag: z.string().min(1),
  /** Interval assumed for a machine whose heartbeat does not say its own. */
  heartbeatSeconds: z.number().int().min(1).max(86_400),
  /** A machine is OFFLINE after this many heartbeat intervals without one. */
  missedHeartbeats: z.number().int().min(1).max(100),
  batch: z.object({
    /** Events per Kafka transaction, at most. */
    maxEvents: z.number().int().min(1).max(100_000),
    /** How long a transaction waits for more events once it has one. */
    lingerMs: z.number().int().min(0).max(10_000),
  }),
  /** How long a dead instance keeps its shards before another takes them over. */
  leaseSeconds: z.number().int().min(3).max(600),
  /**
   * A dedupe window no event touched for this long (stream time) is evicted. Keep it above the
   * fleet's outbox maximum age (7 days by default): a copy arriving later than this is bridged
   * again (docs/bridge.md, "State topics").
   */
  dedupeWindowIdleDays: z.number().int().min(1).max(3_650),
  /** Kafka not answering (or only failing) for this long is logged as a warning, and again once it is back. */
  kafkaUnreachableWarningSeconds: z.number().int().min(1).max(3_600),
  /**
   * Where the Prometheus metrics endpoint listens, or `off`. On by default (an operator of a
   * Kafka pipeline expects its figures), on loopback only: see metrics-kit/metrics-listen.ts.
   */
  metricsListen: z.string().superRefine((text, context) => {
    const parsed = parseMetricsListen(text);
    if (typeof parsed === "string") context.addIssue({ code: "custom", message: parsed });
  }),
});
export type BridgeSettings = z.infer<typeof BridgeSettings>;

/** `tenantId` of the devices rows: the setting, else OpenFrame's default tenant under its conventions, else none. */
export function devicesTenantId(settings: Pick<BridgeSettings, "tenantId" | "platform">): string | null {
  return settings.tenantId ?? (settings.platform === "openframe" ? OPENFRAME_DEFAULT_TENANT : null);
}

export function defaultBridgeDirectories(
  privileged: boolean,
  env: NodeJS.ProcessEnv,
  home: string,
): { configDir: string; dataDir: string } {
  if (privileged) return { configDir: "/etc/edge-bridge", dataDir: "/var/lib/edge-bridge" };
  return {
    configDir: `${env.XDG_CONFIG_HOME ?? `${home}/.config`}/edge-bridge`,
    dataDir: `${env.XDG_STATE_HOME ?? `${home}/.local/state`}/edge-bridge`,
  };
}

/**
 * A default instance id: the host name, made a safe token. Stable across restarts, so a restarted
 * instance takes its own leases back at once instead of waiting for them to expire. Two instances
 * on one host need ids of their own (EDGE_BRIDGE_INSTANCE_ID); the second is refused otherwise.
 */
export function defaultInstanceId(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .slice(0, 60) || "edge-bridge"
  );
}

export function defaultBridgeSettings(directories: {
  configDir: string;
  dataDir: string;
}): z.input<typeof BridgeSettings> {
  return {
    natsServers: ["nats://127.0.0.1:4222"],
    auth: {},
    tls: {},
    systemAccount: { auth: {}, tls: {} },
    trustConnectionNames: false,
    platform: "edge",
    group: "edge-bridge",
    instanceId: defaultInstanceId(),
    ...directories,
    logLevel: "info",
    kafka: {
      brokers: ["127.0.0.1:9092"],
      clientId: "edge-bridge",
      sasl: {},
      tls: { enabled: false },
      producerThread: false,
      partitions: 3,
      replicationFactor: -1,
      maxRecordBytes: 1_000_000,
    },
    topics: { ...DEFAULT_TOPICS },
    organizationTag: "organization",
    heartbeatSeconds: 60,
    missedHeartbeats: 3,
    batch: { maxEvents: 1_000, lingerMs: 5 },
    leaseSeconds: 15,
    dedupeWindowIdleDays: 8,
    kafkaUnreachableWarningSeconds: 5,
    // The agent's example port is 9464: one more, so both can run on one machine.
    metricsListen: "127.0.0.1:9465",
  };
}
