import {
  environmentLayer as environmentLayerOf,
  type FlagValues,
  fileLayer as fileLayerOf,
  flagLayer as flagLayerOf,
  type SettingSpec,
  type SettingsLayer,
  settingsFlagOptionsOf,
} from "../settings-kit/index.ts";

export type { FlagValues, SettingsLayer, SourcedValue } from "../settings-kit/index.ts";

/** The agent's settings: environment names, flags and value kinds (README, "Configuration"). */
export const SETTING_SPECS: readonly SettingSpec[] = [
  {
    path: "natsServers",
    env: ["EDGE_AGENT_NATS_URL", "NATS_URL"],
    flag: "nats-url",
    kind: "servers",
    valueName: "URL[,URL]",
    help: "NATS server URLs (credentials in a URL are taken out as auth settings)",
  },
  {
    path: "machineId",
    env: ["EDGE_AGENT_MACHINE_ID"],
    flag: "machine-id",
    kind: "string",
    valueName: "ID",
    help: "this machine's id (default: a UUID generated once and kept in the data dir)",
  },
  {
    path: "inboxPrefix",
    env: ["EDGE_AGENT_INBOX_PREFIX"],
    flag: "inbox-prefix",
    kind: "string",
    valueName: "PREFIX",
    help: "where replies to the agent's requests land (default _INBOX_<machineId>)",
  },
  {
    path: "dataDir",
    env: ["EDGE_AGENT_DATA_DIR"],
    flag: "data-dir",
    kind: "string",
    valueName: "DIR",
    help: "outbox, status file, machine id and state",
  },
  {
    path: "configDir",
    env: ["EDGE_AGENT_CONFIG_DIR"],
    flag: "config-dir",
    kind: "string",
    valueName: "DIR",
    help: "settings.json, secrets and the last good remote configuration",
  },
  {
    path: "logLevel",
    env: ["EDGE_AGENT_LOG_LEVEL"],
    flag: "log-level",
    kind: "string",
    valueName: "LEVEL",
    help: "fatal, error, warn, info, debug, trace or silent",
  },
  {
    path: "heartbeatSeconds",
    env: ["EDGE_AGENT_HEARTBEAT_SECONDS"],
    flag: "heartbeat-seconds",
    kind: "int",
    valueName: "N",
    help: "seconds between heartbeats",
  },
  {
    path: "telemetrySchedule",
    env: ["EDGE_AGENT_TELEMETRY_SCHEDULE"],
    flag: "telemetry-schedule",
    kind: "string",
    valueName: "CRON",
    help: "when telemetry is sampled (cron, seconds field allowed)",
  },
  {
    path: "inventorySchedule",
    env: ["EDGE_AGENT_INVENTORY_SCHEDULE"],
    flag: "inventory-schedule",
    kind: "string",
    valueName: "CRON",
    help: "when the inventory is checked (sent when it changed, or daily)",
  },
  {
    path: "auth.user",
    env: ["EDGE_AGENT_NATS_USER", "NATS_USER"],
    flag: "user",
    kind: "string",
    valueName: "USER",
    help: "NATS user (with --password)",
  },
  {
    path: "auth.password",
    env: ["EDGE_AGENT_NATS_PASSWORD", "NATS_PASSWORD"],
    flag: "password",
    kind: "string",
    valueName: "PASSWORD",
    help: "NATS password",
  },
  {
    path: "auth.token",
    env: ["EDGE_AGENT_NATS_TOKEN", "NATS_TOKEN"],
    flag: "token",
    kind: "string",
    valueName: "TOKEN",
    help: "NATS token",
  },
  {
    path: "auth.nkeySeedFile",
    env: ["EDGE_AGENT_NATS_NKEY_FILE", "NATS_NKEY"],
    flag: "nkey-seed-file",
    kind: "string",
    valueName: "FILE",
    help: "NKey seed file",
  },
  {
    path: "auth.credsFile",
    env: ["EDGE_AGENT_NATS_CREDS_FILE", "NATS_CREDS"],
    flag: "creds-file",
    kind: "string",
    valueName: "FILE",
    help: "NATS .creds file (JWT and seed)",
  },
  {
    path: "tls.caFile",
    env: ["EDGE_AGENT_TLS_CA_FILE"],
    flag: "tls-ca",
    kind: "string",
    valueName: "FILE",
    help: "CA certificate the server is checked against",
  },
  {
    path: "tls.certFile",
    env: ["EDGE_AGENT_TLS_CERT_FILE"],
    flag: "tls-cert",
    kind: "string",
    valueName: "FILE",
    help: "TLS client certificate (with --tls-key)",
  },
  {
    path: "tls.keyFile",
    env: ["EDGE_AGENT_TLS_KEY_FILE"],
    flag: "tls-key",
    kind: "string",
    valueName: "FILE",
    help: "TLS client key",
  },
  {
    path: "outbox.maxBytes",
    env: ["EDGE_AGENT_OUTBOX_MAX_BYTES"],
    kind: "int",
    valueName: "BYTES",
    help: "most bytes the outbox keeps",
  },
  {
    path: "outbox.maxAgeSeconds",
    env: ["EDGE_AGENT_OUTBOX_MAX_AGE_SECONDS"],
    kind: "int",
    valueName: "SECONDS",
    help: "oldest event the outbox keeps",
  },
  {
    path: "outbox.durability",
    env: ["EDGE_AGENT_OUTBOX_DURABILITY"],
    kind: "string",
    valueName: "MODE",
    help: "full (fsync every event) or normal",
  },
  {
    path: "platform",
    env: ["EDGE_AGENT_PLATFORM"],
    flag: "platform",
    kind: "string",
    valueName: "NAME",
    help: "edge, or openframe: OpenFrame's conventions where they differ from ours (unsigned commands taken, downloads without a sha256 taken from the allowed hosts); docs/openframe.md",
  },
  {
    path: "toolPolicy.allowMissingChecksum",
    env: ["EDGE_AGENT_ALLOW_MISSING_CHECKSUM"],
    kind: "bool",
    valueName: "BOOL",
    help: "take downloads without a sha256 (tools, pushes, self-updates): HTTPS from the allowed download hosts only, size and sha256 seen reported (default true under --platform openframe)",
  },
  {
    path: "toolPolicy.allowedDownloadHosts",
    env: ["EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS"],
    flag: "allowed-download-hosts",
    kind: "list",
    valueName: "HOST[,HOST]",
    help: "hosts a download without a sha256 may come from, redirects included (name, *.domain, optional :port; none by default, under every platform)",
  },
  {
    path: "toolPolicy.maxDownloadBytes",
    env: ["EDGE_AGENT_MAX_DOWNLOAD_BYTES"],
    kind: "int",
    valueName: "BYTES",
    help: "largest tool download",
  },
  {
    path: "toolPolicy.maxUnpackedBytes",
    env: ["EDGE_AGENT_TOOLS_MAX_UNPACKED_BYTES"],
    kind: "int",
    valueName: "BYTES",
    help: "most bytes one tool archive may unpack to",
  },
  {
    path: "toolPolicy.downloadStallSeconds",
    env: ["EDGE_AGENT_DOWNLOAD_STALL_SECONDS"],
    kind: "int",
    valueName: "SECONDS",
    help: "a download with no byte for this long is given up",
  },
  {
    path: "toolPolicy.downloadDeadlineSeconds",
    env: ["EDGE_AGENT_DOWNLOAD_DEADLINE_SECONDS"],
    kind: "int",
    valueName: "SECONDS",
    help: "a download not done in this long is given up",
  },
  {
    path: "allowUnsigned",
    env: ["EDGE_AGENT_ALLOW_UNSIGNED"],
    flag: "allow-unsigned",
    kind: "bool",
    valueName: "BOOL",
    help: "DEVELOPMENT ONLY: without a configSigningKey, take unsigned commands and configuration (otherwise all are refused)",
  },
  {
    path: "allowUnsignedUninstall",
    env: ["EDGE_AGENT_ALLOW_UNSIGNED_UNINSTALL"],
    flag: "allow-unsigned-uninstall",
    kind: "bool",
    valueName: "BOOL",
    help: "take an UNSIGNED remote uninstall (OpenFrame's) when unsigned commands are taken; safe only if no one but the platform can make the server store a message on machine.<id>.client-uninstall, which holds only in the account layout (edge-agent accounts): in one account any machine can make the server store a copy of its own old command on another machine's subject. Off by default, under every platform",
  },
  {
    path: "openframe.secretFile",
    env: ["EDGE_AGENT_OPENFRAME_SECRET_FILE"],
    flag: "openframe-secret-file",
    kind: "string",
    valueName: "FILE",
    help: "file (0600) whose content OpenFrame's tool argument ${client.openframeSecret} stands for; read at each use, never logged",
  },
  {
    path: "openframe.tokenPath",
    env: ["EDGE_AGENT_OPENFRAME_TOKEN_PATH"],
    flag: "openframe-token-path",
    kind: "string",
    valueName: "PATH",
    help: "the path OpenFrame's tool argument ${client.openframeTokenPath} stands for (the token file its tools read)",
  },
  {
    path: "configSigningKey",
    env: ["EDGE_AGENT_CONFIG_SIGNING_KEY"],
    flag: "config-signing-key",
    kind: "string",
    valueName: "KEY",
    help: "NKey public key that must have signed remote configuration and commands",
  },
  {
    path: "metricsListen",
    env: ["EDGE_AGENT_METRICS_LISTEN"],
    flag: "metrics-listen",
    kind: "string",
    valueName: "127.0.0.1:PORT",
    help: "serve Prometheus metrics at http://<address>/metrics (loopback IP only; off by default)",
  },
  {
    path: "tags",
    env: ["EDGE_AGENT_TAGS"],
    flag: "tag",
    kind: "tags",
    valueName: "KEY=VALUE",
    help: "a tag sent with telemetry and inventory (repeatable; the variable takes k=v,k=v)",
  },
];

export function environmentLayer(env: NodeJS.ProcessEnv): SettingsLayer {
  return environmentLayerOf(SETTING_SPECS, env);
}

/** The flags `parseArgs` should accept for settings. */
export function settingsFlagOptions(): Record<string, { type: "string"; multiple?: boolean }> {
  return settingsFlagOptionsOf(SETTING_SPECS);
}

export function flagLayer(flags: FlagValues): SettingsLayer {
  return flagLayerOf(SETTING_SPECS, flags);
}

/** `settings.json`: the settings' own names, plus `natsUrl` (a string or list, credentials allowed). */
export function fileLayer(document: Record<string, unknown>, fileName: string): SettingsLayer {
  return fileLayerOf(SETTING_SPECS, document, fileName, { natsUrl: "natsServers" });
}
