import { posix, win32 } from "node:path";
import * as z from "zod";
import {
  inboxPrefixProblem,
  isReservedMachineId,
  isSafeToken,
  RESERVED_MACHINE_IDS,
  Tags,
  TaskInterpreter,
} from "../contracts/index.ts";
import { parseMetricsListen } from "../metrics-kit/index.ts";
import { LOG_LEVELS, parseHostPattern } from "../runtime/index.ts";

export const OutboxDurability = z.enum(["full", "normal"]);

/**
 * Whose conventions the agent follows where they differ from our stricter defaults: `edge` (ours)
 * or `openframe` (OpenFrame's platform, unchanged, manages it: it signs no command and its downloads
 * carry no sha256). The same setting, names and meaning as the bridge's `platform`. What each
 * changes is in defaults.ts (`withPlatformDefaults`).
 */
export const ManagementPlatform = z.enum(["edge", "openframe"]);
export type ManagementPlatform = z.infer<typeof ManagementPlatform>;

const DownloadHostEntry = z.string().superRefine((entry, context) => {
  const parsed = parseHostPattern(entry);
  if (typeof parsed === "string") context.addIssue({ code: "custom", message: parsed });
});

/** Where remote tasks may run (docs/tasks.md): `working-dir` sandboxes a task to write only its working dir. */
export const TaskConfinement = z.enum(["none", "working-dir"]);
export type TaskConfinement = z.infer<typeof TaskConfinement>;

const AbsoluteFolder = z
  .string()
  .min(1)
  .refine((path) => posix.isAbsolute(path) || win32.isAbsolute(path), "must be an absolute path");

/**
 * Remote tasks (DESIGN, "Remote tasks"): this machine's own policy, never changed remotely. Signed
 * tasks are taken like every command; unsigned ones only with `allowUnsigned` here, never because
 * the agent's own `allowUnsigned` or a platform's conventions take unsigned commands.
 */
export const TaskSettings = z.object({
  /** False: every task is refused (REJECTED, naming this setting). */
  enabled: z.boolean(),
  /** Development only: without a configSigningKey, take unsigned tasks. */
  allowUnsigned: z.boolean(),
  /** The interpreters a script may name (default the OS's two). */
  allowedInterpreters: z.array(TaskInterpreter),
  /** Whether a program with its arguments (`{argv}`, no shell) may run. */
  allowArgv: z.boolean(),
  /** Folders besides the data dir a task's `workingDir` may be under (links resolved). */
  allowedWorkingDirs: z.array(AbsoluteFolder),
  confine: TaskConfinement,
  /** Tasks run side by side at most; the others wait, in order. */
  maxConcurrent: z.number().int().min(1).max(64),
});
export type TaskSettings = z.infer<typeof TaskSettings>;

/** The one resolved settings object the agent runs on (defaults < config file < environment < flags). */
export const Settings = z.object({
  /** NATS server URLs, already stripped of any credentials written into them. */
  natsServers: z.array(z.string()).min(1),
  machineId: z
    .string()
    .refine(isSafeToken, "must be letters, digits, '_' or '-' only (it becomes a NATS subject token)")
    .refine(
      (id) => !isReservedMachineId(id),
      `must not be ${RESERVED_MACHINE_IDS.map((id) => JSON.stringify(id)).join(" or ")}: machine.all.* subjects are fleet-wide`,
    )
    .optional(),
  /**
   * Where replies to the agent's requests land (every request, JetStream API call, consumer and KV
   * read). Default `_INBOX_<machineId>`: a prefix of its own that no other machine may subscribe to.
   */
  inboxPrefix: z
    .string()
    .superRefine((prefix, context) => {
      const problem = inboxPrefixProblem(prefix);
      if (problem) context.addIssue({ code: "custom", message: problem });
    })
    .optional(),
  dataDir: z.string().min(1),
  configDir: z.string().min(1),
  logLevel: z.enum(LOG_LEVELS),
  heartbeatSeconds: z.number().int().min(1).max(86_400),
  telemetrySchedule: z.string().min(1),
  inventorySchedule: z.string().min(1),
  auth: z.object({
    user: z.string().optional(),
    password: z.string().optional(),
    token: z.string().optional(),
    nkeySeedFile: z.string().optional(),
    credsFile: z.string().optional(),
  }),
  tls: z.object({
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
  }),
  outbox: z.object({
    maxBytes: z.number().int().positive(),
    maxAgeSeconds: z.number().int().positive(),
    durability: OutboxDurability,
  }),
  /** Bounded like a remote document's: every tag goes into every sample. */
  tags: Tags,
  platform: ManagementPlatform,
  toolPolicy: z.object({
    /**
     * Downloads without a sha256 (tools, pushes, self-updates) are taken, under the rules of
     * src/download/unchecked-policy.ts: HTTPS only, from `allowedDownloadHosts` only, size bounded,
     * what was received recorded and reported. Off: a sha256 is required.
     */
    allowMissingChecksum: z.boolean(),
    /** Hosts (`name`, `*.domain`, `:port`) a download without a sha256 may come from, redirects included. */
    allowedDownloadHosts: z.array(DownloadHostEntry),
    maxDownloadBytes: z.number().int().positive(),
    /** Most bytes one tool's archive may unpack to; free disk (above the outbox's room) bounds it too. */
    maxUnpackedBytes: z.number().int().positive(),
    /** A download with no byte for this long is given up (and retried later). */
    downloadStallSeconds: z.number().int().positive(),
    /** A download not done in this long is given up (and retried later). */
    downloadDeadlineSeconds: z.number().int().positive(),
  }),
  /**
   * Where the Prometheus metrics endpoint listens (`127.0.0.1:9464`); off when absent or `off`.
   * Loopback only: see metrics-kit/metrics-listen.ts.
   */
  metricsListen: z
    .string()
    .superRefine((text, context) => {
      const parsed = parseMetricsListen(text);
      if (typeof parsed === "string") context.addIssue({ code: "custom", message: parsed });
    })
    .optional(),
  /** NKey public key that must have signed every remote configuration document and command. */
  configSigningKey: z.string().optional(),
  /**
   * Development only: without a signing key, take unsigned commands and configuration. Off, an agent
   * without a key refuses them all (and says so at every start, in `status` and in `doctor`).
   */
  allowUnsigned: z.boolean(),
  /**
   * Take an unsigned remote uninstall (OpenFrame's `{issuedAt}`) when unsigned commands are taken.
   * Safe only where no one but the platform can make the server store a message on a machine's
   * `client-uninstall` subject: the account layout (DESIGN, "Accounts"). Off by default, under
   * every platform.
   */
  allowUnsignedUninstall: z.boolean(),
  tasks: TaskSettings,
  /** What OpenFrame's tool arguments `${client.openframeSecret}` and `${client.openframeTokenPath}` stand for. */
  openframe: z.object({
    /** A file (0600) holding the secret; read at each use, never logged. */
    secretFile: z.string().min(1).optional(),
    /** The path given to tools as `${client.openframeTokenPath}` (the token file OpenFrame's tools read). */
    tokenPath: z.string().min(1).optional(),
  }),
});
export type Settings = z.infer<typeof Settings>;

/** What the settings file, the environment and the flags may each say: any part of the whole. */
export type PartialSettings = {
  [K in keyof Settings]?: Settings[K] extends Record<string, unknown> ? Partial<Settings[K]> : Settings[K];
};
