import * as z from "zod";

/**
 * Wire schemas of every message in docs/DESIGN.md. Each schema is the single source of the
 * TypeScript type (inferred below), and the only place a wire shape is written down.
 *
 * OpenFrame's Java services read and write these with Jackson, which writes `null` for absent
 * fields and ignores unknown ones. So inbound fields the agent can live without are `nullish`,
 * and `z.object` strips unknown keys rather than failing on them.
 */

const isoTimestamp = z.iso.datetime({ offset: true });

export const OsName = z
  .string()
  .transform((os) => os.toLowerCase())
  .pipe(z.enum(["windows", "macos", "linux"]));
export type OsName = z.infer<typeof OsName>;

export const InstallationType = z.enum(["STANDARD", "GUI_APP", "SERVICE"]);
export const SessionType = z.enum(["SERVICE", "CONSOLE", "USER"]);
export const AssetSource = z.enum(["ARTIFACTORY", "TOOL_API", "GITHUB"]);

const stringList = z
  .array(z.string())
  .nullish()
  .transform((list) => list ?? []);

export const InstalledAgentMessage = z.object({
  machineId: z.string().min(1),
  agentType: z.string().min(1),
  version: z.string().min(1),
});
export type InstalledAgentMessage = z.infer<typeof InstalledAgentMessage>;

export const ConnectionEventType = z.enum(["CONNECT", "DISCONNECT", "RECONNECT"]);
export type ConnectionEventType = z.infer<typeof ConnectionEventType>;

export const ClientConnectionEvent = z.object({
  timestamp: isoTimestamp,
  client: z.object({ name: z.string().min(1) }),
  type: ConnectionEventType.nullish(),
  server: z.string().nullish(),
  reason: z.string().nullish(),
  disconnectedAt: isoTimestamp.nullish(),
});
export type ClientConnectionEvent = z.infer<typeof ClientConnectionEvent>;

/** Whether an installed tool runs, as the agent last saw it. */
export const ToolConnectionState = z.enum(["CONNECTED", "DISCONNECTED", "UNKNOWN"]);
export type ToolConnectionState = z.infer<typeof ToolConnectionState>;

/**
 * OpenFrame's `ToolType`: the only tool types its services take. They read a tool connection's
 * `toolType` with `ToolType.valueOf(toolType.toUpperCase())` and leave a message with any other
 * value unacknowledged, to be delivered again and again.
 */
export const OPENFRAME_TOOL_TYPES = ["MESHCENTRAL", "FLEET_MDM", "OPENFRAME_RMM"] as const;

/** The tool type as OpenFrame names it (case aside), or null when OpenFrame knows no such type. */
export function openFrameToolType(toolType: string | null | undefined): string | null {
  if (!toolType) return null;
  return (OPENFRAME_TOOL_TYPES as readonly string[]).includes(toolType.toUpperCase()) ? toolType : null;
}

/**
 * OpenFrame records the tool CONNECTED on every one of these it reads, whatever else it says: so
 * it is sent only for a tool that runs (`state` is CONNECTED when present), and only with a type
 * OpenFrame knows. A tool's loss of connection goes on its tool status instead (`connection`).
 */
export const ToolConnectionMessage = z.object({
  toolType: z
    .string()
    .min(1)
    .refine((toolType) => openFrameToolType(toolType) !== null, {
      message: `toolType must be one of OpenFrame's tool types (${OPENFRAME_TOOL_TYPES.join(", ")})`,
    }),
  agentToolId: z.string().min(1),
  state: z.literal("CONNECTED").nullish(),
  checkedAt: isoTimestamp.nullish(),
  detail: z.string().nullish(),
});
export type ToolConnectionMessage = z.infer<typeof ToolConnectionMessage>;

export const DownloadConfiguration = z.object({
  os: OsName,
  fileName: z.string().nullish(),
  agentFileName: z.string().nullish(),
  link: z.string().nullish(),
  bundleId: z.string().nullish(),
  serviceName: z.string().nullish(),
  installationType: InstallationType.nullish(),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "sha256 must be 64 hex digits")
    .transform((hex) => hex.toLowerCase())
    .nullish(),
  size: z.number().int().nonnegative().nullish(),
});
export type DownloadConfiguration = z.infer<typeof DownloadConfiguration>;

const downloadConfigurationList = z
  .array(DownloadConfiguration)
  .nullish()
  .transform((list) => list ?? []);

export const Asset = z.object({
  id: z.string().min(1),
  version: z.string().nullish(),
  downloadConfigurations: downloadConfigurationList,
  localFilenameConfiguration: z
    .array(z.object({ filename: z.string(), os: OsName }))
    .nullish()
    .transform((list) => list ?? []),
  source: AssetSource.nullish(),
  path: z.string().nullish(),
  executable: z.boolean().nullish(),
});
export type Asset = z.infer<typeof Asset>;

export const ToolInstallationMessage = z.object({
  toolAgentId: z.string().min(1),
  toolId: z.string().nullish(),
  toolType: z.string().nullish(),
  version: z.string().nullish(),
  sessionType: SessionType.nullish(),
  downloadConfigurations: downloadConfigurationList,
  assets: z
    .array(Asset)
    .nullish()
    .transform((list) => list ?? []),
  installationCommandArgs: stringList,
  runCommandArgs: stringList,
  toolAgentIdCommandArgs: stringList,
  uninstallationCommandArgs: stringList,
  reinstall: z
    .boolean()
    .nullish()
    .transform((flag) => flag ?? false),
});
export type ToolInstallationMessage = z.infer<typeof ToolInstallationMessage>;

/** One asset's new version in a fleet-wide tool update, named by the id it was installed with. */
export const AssetUpdate = z.object({
  assetId: z.string().min(1),
  /** An asset without a version is left as installed (as OpenFrame's own client does). */
  version: z.string().nullish(),
  executable: z.boolean().nullish(),
  downloadConfigurations: downloadConfigurationList,
});
export type AssetUpdate = z.infer<typeof AssetUpdate>;

/**
 * OpenFrame's fleet-wide tool update (its `ToolAgentUpdateMessage`), on
 * `machine.all.tool.{toolAgentId}.update`. It carries only what changes: the tool's new version
 * and downloads, and assets by `assetId`; the tool's type, ids, arguments and file names stay as
 * installed (tools/tool-update.ts).
 */
export const ToolAgentUpdateMessage = z.object({
  toolAgentId: z.string().min(1),
  version: z.string().min(1),
  sessionType: SessionType.nullish(),
  downloadConfigurations: downloadConfigurationList,
  assets: z
    .array(AssetUpdate)
    .nullish()
    .transform((list) => list ?? []),
});
export type ToolAgentUpdateMessage = z.infer<typeof ToolAgentUpdateMessage>;

export const MachinePinotMessage = z.object({
  tenantId: z.string().nullish(),
  machineId: z.string().min(1),
  organizationId: z.string().nullish(),
  deviceType: z.string().nullish(),
  status: z.string().nullish(),
  osType: z.string().nullish(),
  tags: stringList,
  tagKeyValues: stringList,
  ingestionTime: z.number().int(),
});
export type MachinePinotMessage = z.infer<typeof MachinePinotMessage>;

/**
 * A file the agent downloaded, as it arrived (ours): reported with a tool's INSTALLED and a
 * self-update's RESTARTING and UPDATED, so the platform knows what runs and can see a file taken
 * without a sha256 change under an unchanged link.
 */
export const DownloadRecord = z.object({
  /** Which file: `tool` (the tool's own download), `asset:<assetId>`, or `edge-agent` (a self-update). */
  file: z.string().min(1),
  link: z.string(),
  /** Bytes received. */
  size: z.number().int().nonnegative(),
  /** sha256 (hex) of the bytes received. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** True: it matched the sha256 the command gave; false: taken without one (toolPolicy.allowMissingChecksum). */
  verified: z.boolean(),
});
export type DownloadRecord = z.infer<typeof DownloadRecord>;

export const ToolInstallationState = z.enum(["DOWNLOADING", "INSTALLING", "INSTALLED", "FAILED", "UNINSTALLED"]);
/**
 * A tool command's result or step; or, with `connection` set, an installed tool's liveness (on
 * start, on change and hourly), which no command result carries.
 */
export const ToolInstallationStatus = z.object({
  toolAgentId: z.string().min(1),
  toolId: z.string().nullish(),
  toolType: z.string().nullish(),
  version: z.string().nullish(),
  state: ToolInstallationState,
  error: z.string().nullish(),
  timestamp: isoTimestamp,
  connection: ToolConnectionState.nullish(),
  /** What the liveness check saw (`service x is not active`, `process 123 runs from ...`). */
  connectionDetail: z.string().nullish(),
  /** On an install's or update's INSTALLED: every file it downloaded, as received. */
  downloads: z.array(DownloadRecord).nullish(),
});
export type ToolInstallationStatus = z.infer<typeof ToolInstallationStatus>;

export const ConfigApplyStatus = z.enum(["APPLIED", "REJECTED", "ROLLED_BACK"]);
export const ConfigStatus = z.object({
  revision: z.number().int().nonnegative().nullish(),
  status: ConfigApplyStatus,
  error: z.string().nullish(),
  timestamp: isoTimestamp,
});
export type ConfigStatus = z.infer<typeof ConfigStatus>;

export const HostnameMessage = z.object({ hostname: z.string().min(1) });
export type HostnameMessage = z.infer<typeof HostnameMessage>;

/**
 * The heartbeat: presence is the message itself. OpenFrame's own agents send `{}`; ours adds the
 * interval it beats at, so whoever judges presence knows when a beat is overdue.
 */
export const HeartbeatMessage = z.object({ intervalSeconds: z.number().int().min(1).max(86_400).nullish() });
export type HeartbeatMessage = z.infer<typeof HeartbeatMessage>;

/**
 * Self-update command. The version must be plain semver: it names a folder on the device, so
 * nothing like `../x` can get through. With a signing key configured, it must carry SignedClaims
 * (scope = the subject it is published on), checked before this schema.
 */
export const ClientUpdateMessage = z.object({
  version: z
    .string()
    .min(1)
    .max(64)
    .regex(/^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, "version must be semver, e.g. 1.4.2")
    .transform((version) => version.replace(/^v/, "")),
  downloadConfigurations: downloadConfigurationList,
  signature: z.string().nullish(),
});
export type ClientUpdateMessage = z.infer<typeof ClientUpdateMessage>;

/**
 * How a self-update went, on `machine.{id}.client-update.status` (not in OpenFrame's contracts:
 * the platform learns the new version from `installed-agent`, and the why of a failure from this).
 */
export const ClientUpdateState = z.enum(["REJECTED", "FAILED", "RESTARTING", "UPDATED", "ROLLED_BACK"]);
export type ClientUpdateState = z.infer<typeof ClientUpdateState>;
export const ClientUpdateStatus = z.object({
  version: z.string().min(1),
  runningVersion: z.string().min(1),
  state: ClientUpdateState,
  error: z.string().nullish(),
  timestamp: isoTimestamp,
  /** On RESTARTING and UPDATED: the new binary as it was received. */
  download: DownloadRecord.nullish(),
});
export type ClientUpdateStatus = z.infer<typeof ClientUpdateStatus>;

export const ClientUninstallMessage = z.object({ issuedAt: isoTimestamp.nullish() });
export type ClientUninstallMessage = z.infer<typeof ClientUninstallMessage>;

/**
 * How a remote uninstall went, on `machine.{id}.client-uninstall.status` (ours): REJECTED (not
 * verified: nothing was touched) or UNINSTALLING (verified: the agent removes itself next, so this
 * is the last event it can send).
 */
export const ClientUninstallState = z.enum(["REJECTED", "UNINSTALLING"]);
export type ClientUninstallState = z.infer<typeof ClientUninstallState>;
export const ClientUninstallStatus = z.object({
  state: ClientUninstallState,
  error: z.string().nullish(),
  timestamp: isoTimestamp,
});
export type ClientUninstallStatus = z.infer<typeof ClientUninstallStatus>;

/**
 * What a signed document or command claims about itself, covered by its `signature`
 * (docs/DESIGN.md, "Commands and signatures"): where it may be used, and its place in that scope's rising order. A deletion of
 * a remote configuration key is a signed document too: `{deleted: true, scope, serial, signature}`.
 */
export const SignedClaims = z.object({
  /** `kv:<key>` for an `agent-config` key; for a command, the exact subject it is published on. */
  scope: z.string().min(1).max(256),
  /** Rises with every document of the scope (the platform may use its clock in milliseconds). */
  serial: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  /**
   * When the document stops being valid (ISO-8601): a command taken after that is refused, whatever
   * else holds. Optional; the platform's signing tool sets one on every command.
   */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  /** base64 Ed25519 over the canonical JSON of the whole document without `signature`. */
  signature: z.string().min(1),
});
export type SignedClaims = z.infer<typeof SignedClaims>;
export const SIGNED_CLAIM_FIELDS = ["scope", "serial", "expiresAt", "signature"] as const;

/**
 * How far `tags` may go: every tag travels in every telemetry sample and inventory, so an
 * unbounded document multiplies into the streams (one of 654 KB grew TELEMETRY by 6.5 MB in 10 s).
 * Sizes are UTF-8 bytes.
 */
export const TAG_LIMITS = { maxTags: 64, maxKeyBytes: 128, maxValueBytes: 256, maxTotalBytes: 4_096 } as const;
const utf8Bytes = (text: string): number => Buffer.byteLength(text, "utf8");
export const Tags = z.record(z.string(), z.string()).superRefine((tags, context) => {
  const entries = Object.entries(tags);
  const fail = (message: string): void => context.addIssue({ code: "custom", message });
  if (entries.length > TAG_LIMITS.maxTags)
    return fail(`${entries.length} tags, at most ${TAG_LIMITS.maxTags} are allowed`);
  let total = 0;
  for (const [key, value] of entries) {
    const keyBytes = utf8Bytes(key);
    const valueBytes = utf8Bytes(value);
    if (keyBytes === 0) return fail("a tag key may not be empty");
    if (keyBytes > TAG_LIMITS.maxKeyBytes)
      return fail(
        `tag key ${JSON.stringify(key.slice(0, 32))}… is ${keyBytes} bytes, at most ${TAG_LIMITS.maxKeyBytes}`,
      );
    if (valueBytes > TAG_LIMITS.maxValueBytes)
      return fail(`tag ${JSON.stringify(key)} has a value of ${valueBytes} bytes, at most ${TAG_LIMITS.maxValueBytes}`);
    total += keyBytes + valueBytes;
  }
  if (total > TAG_LIMITS.maxTotalBytes) fail(`tags take ${total} bytes in all, at most ${TAG_LIMITS.maxTotalBytes}`);
});

/**
 * Remote agent configuration (a KV revision or a pushed document). Every setting is optional: a
 * revision says only what it changes, and the machine key is merged over the defaults key.
 */
export const AgentConfiguration = z.object({
  revision: z.number().int().nonnegative(),
  heartbeatSeconds: z.number().int().min(1).max(86_400).optional(),
  telemetrySchedule: z.string().min(1).optional(),
  inventorySchedule: z.string().min(1).optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
  tags: Tags.optional(),
  outbox: z
    .object({
      maxBytes: z.number().int().positive().optional(),
      maxAgeSeconds: z.number().int().positive().optional(),
    })
    .optional(),
  toolPolicy: z
    .object({
      allowMissingChecksum: z.boolean().optional(),
    })
    .optional(),
  signature: z.string().optional(),
});
export type AgentConfiguration = z.infer<typeof AgentConfiguration>;
