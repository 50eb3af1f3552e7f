import { environmentLayer as environmentLayerOf, fileLayer as fileLayerOf, flagLayer as flagLayerOf, settingsFlagOptionsOf, type FlagValues, type SettingSpec, type SettingsLayer } from "./layers.ts";

export type { FlagValues, SettingsLayer, SourcedValue } from "./layers.ts";

/** The agent's settings: environment names, flags and value kinds (README, "Configuration"). */
export const SETTING_SPECS: readonly SettingSpec[] = [
  { path: "natsServers", env: ["EDGE_AGENT_NATS_URL", "NATS_URL"], flag: "nats-url", kind: "servers" },
  { path: "machineId", env: ["EDGE_AGENT_MACHINE_ID"], flag: "machine-id", kind: "string" },
  { path: "inboxPrefix", env: ["EDGE_AGENT_INBOX_PREFIX"], flag: "inbox-prefix", kind: "string" },
  { path: "dataDir", env: ["EDGE_AGENT_DATA_DIR"], flag: "data-dir", kind: "string" },
  { path: "configDir", env: ["EDGE_AGENT_CONFIG_DIR"], flag: "config-dir", kind: "string" },
  { path: "logLevel", env: ["EDGE_AGENT_LOG_LEVEL"], flag: "log-level", kind: "string" },
  { path: "heartbeatSeconds", env: ["EDGE_AGENT_HEARTBEAT_SECONDS"], flag: "heartbeat-seconds", kind: "int" },
  { path: "telemetrySchedule", env: ["EDGE_AGENT_TELEMETRY_SCHEDULE"], flag: "telemetry-schedule", kind: "string" },
  { path: "inventorySchedule", env: ["EDGE_AGENT_INVENTORY_SCHEDULE"], flag: "inventory-schedule", kind: "string" },
  { path: "auth.user", env: ["EDGE_AGENT_NATS_USER", "NATS_USER"], flag: "user", kind: "string" },
  { path: "auth.password", env: ["EDGE_AGENT_NATS_PASSWORD", "NATS_PASSWORD"], flag: "password", kind: "string" },
  { path: "auth.token", env: ["EDGE_AGENT_NATS_TOKEN", "NATS_TOKEN"], flag: "token", kind: "string" },
  { path: "auth.nkeySeedFile", env: ["EDGE_AGENT_NATS_NKEY_FILE", "NATS_NKEY"], flag: "nkey-seed-file", kind: "string" },
  { path: "auth.credsFile", env: ["EDGE_AGENT_NATS_CREDS_FILE", "NATS_CREDS"], flag: "creds-file", kind: "string" },
  { path: "tls.caFile", env: ["EDGE_AGENT_TLS_CA_FILE"], flag: "tls-ca", kind: "string" },
  { path: "tls.certFile", env: ["EDGE_AGENT_TLS_CERT_FILE"], flag: "tls-cert", kind: "string" },
  { path: "tls.keyFile", env: ["EDGE_AGENT_TLS_KEY_FILE"], flag: "tls-key", kind: "string" },
  { path: "outbox.maxBytes", env: ["EDGE_AGENT_OUTBOX_MAX_BYTES"], kind: "int" },
  { path: "outbox.maxAgeSeconds", env: ["EDGE_AGENT_OUTBOX_MAX_AGE_SECONDS"], kind: "int" },
  { path: "outbox.durability", env: ["EDGE_AGENT_OUTBOX_DURABILITY"], kind: "string" },
  { path: "toolPolicy.allowMissingChecksum", env: ["EDGE_AGENT_ALLOW_MISSING_CHECKSUM"], kind: "bool" },
  { path: "toolPolicy.maxDownloadBytes", env: ["EDGE_AGENT_MAX_DOWNLOAD_BYTES"], kind: "int" },
  { path: "toolPolicy.maxUnpackedBytes", env: ["EDGE_AGENT_TOOLS_MAX_UNPACKED_BYTES"], kind: "int" },
  { path: "toolPolicy.downloadStallSeconds", env: ["EDGE_AGENT_DOWNLOAD_STALL_SECONDS"], kind: "int" },
  { path: "toolPolicy.downloadDeadlineSeconds", env: ["EDGE_AGENT_DOWNLOAD_DEADLINE_SECONDS"], kind: "int" },
  { path: "configSigningKey", env: ["EDGE_AGENT_CONFIG_SIGNING_KEY"], flag: "config-signing-key", kind: "string" },
  { path: "metricsListen", env: ["EDGE_AGENT_METRICS_LISTEN"], flag: "metrics-listen", kind: "string" },
  { path: "tags", env: ["EDGE_AGENT_TAGS"], flag: "tag", kind: "tags" },
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
