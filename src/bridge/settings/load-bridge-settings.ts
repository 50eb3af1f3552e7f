import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  assertCompleteNatsEndpoint,
  environmentLayer,
  type FlagValues,
  fileLayer,
  flagLayer,
  mergeLayers,
  readJsonSettingsFile,
  resolveSettings,
  type SettingSpec,
  SettingsError,
  settingsFlagOptionsOf,
} from "../../settings-kit/index.ts";
import { BridgeSettings, defaultBridgeDirectories, defaultBridgeSettings } from "./bridge-settings.ts";

export const BRIDGE_SETTINGS_FILE_NAME = "settings.json";

const PREFIX = "EDGE_BRIDGE_";
const spec = (
  path: string,
  envName: string,
  kind: SettingSpec["kind"],
  flag?: string,
  extra: Partial<SettingSpec> = {},
): SettingSpec => ({
  path,
  env: [`${PREFIX}${envName}`, ...(extra.env ?? [])],
  kind,
  ...(flag ? { flag } : {}),
  ...(extra.authPrefix !== undefined ? { authPrefix: extra.authPrefix } : {}),
});

/** Every bridge setting: its path, environment name, flag and kind (README, "The companion bridge"). */
export const BRIDGE_SETTING_SPECS: readonly SettingSpec[] = [
  spec("natsServers", "NATS_URL", "servers", "nats-url", { env: ["NATS_URL"] }),
  spec("auth.user", "NATS_USER", "string", "user"),
  spec("auth.password", "NATS_PASSWORD", "string", "password"),
  spec("auth.token", "NATS_TOKEN", "string", "token"),
  spec("auth.nkeySeedFile", "NATS_NKEY_FILE", "string", "nkey-seed-file"),
  spec("auth.credsFile", "NATS_CREDS_FILE", "string", "creds-file"),
  spec("tls.caFile", "TLS_CA_FILE", "string", "tls-ca"),
  spec("tls.certFile", "TLS_CERT_FILE", "string", "tls-cert"),
  spec("tls.keyFile", "TLS_KEY_FILE", "string", "tls-key"),
  spec("systemAccount.natsServers", "SYSTEM_NATS_URL", "servers", "system-nats-url", { authPrefix: "systemAccount." }),
  spec("systemAccount.auth.user", "SYSTEM_NATS_USER", "string"),
  spec("systemAccount.auth.password", "SYSTEM_NATS_PASSWORD", "string"),
  spec("systemAccount.auth.token", "SYSTEM_NATS_TOKEN", "string"),
  spec("systemAccount.auth.nkeySeedFile", "SYSTEM_NATS_NKEY_FILE", "string"),
  spec("systemAccount.auth.credsFile", "SYSTEM_NATS_CREDS_FILE", "string", "system-creds-file"),
  spec("systemAccount.tls.caFile", "SYSTEM_TLS_CA_FILE", "string"),
  spec("systemAccount.tls.certFile", "SYSTEM_TLS_CERT_FILE", "string"),
  spec("systemAccount.tls.keyFile", "SYSTEM_TLS_KEY_FILE", "string"),
  spec("trustConnectionNames", "TRUST_CONNECTION_NAMES", "bool"),
  spec("platform", "PLATFORM", "string", "platform"),
  spec("group", "GROUP", "string", "group"),
  spec("instanceId", "INSTANCE_ID", "string", "instance-id"),
  spec("dataDir", "DATA_DIR", "string", "data-dir"),
  spec("configDir", "CONFIG_DIR", "string", "config-dir"),
  spec("logLevel", "LOG_LEVEL", "string", "log-level"),
  spec("kafka.brokers", "KAFKA_BROKERS", "list", "kafka-brokers"),
  spec("kafka.clientId", "KAFKA_CLIENT_ID", "string", "kafka-client-id"),
  spec("kafka.sasl.mechanism", "KAFKA_SASL_MECHANISM", "string", "kafka-sasl-mechanism"),
  spec("kafka.sasl.username", "KAFKA_SASL_USERNAME", "string", "kafka-sasl-username"),
  spec("kafka.sasl.password", "KAFKA_SASL_PASSWORD", "string"),
  spec("kafka.sasl.passwordFile", "KAFKA_SASL_PASSWORD_FILE", "string", "kafka-sasl-password-file"),
  spec("kafka.tls.enabled", "KAFKA_TLS", "bool"),
  spec("kafka.tls.caFile", "KAFKA_TLS_CA_FILE", "string", "kafka-tls-ca"),
  spec("kafka.tls.certFile", "KAFKA_TLS_CERT_FILE", "string", "kafka-tls-cert"),
  spec("kafka.tls.keyFile", "KAFKA_TLS_KEY_FILE", "string", "kafka-tls-key"),
  spec("kafka.tls.serverName", "KAFKA_TLS_SERVER_NAME", "string"),
  spec("kafka.producerThread", "KAFKA_PRODUCER_THREAD", "bool"),
  spec("kafka.partitions", "KAFKA_PARTITIONS", "int", "kafka-partitions"),
  spec("kafka.replicationFactor", "KAFKA_REPLICATION_FACTOR", "string"),
  spec("kafka.maxRecordBytes", "KAFKA_MAX_RECORD_BYTES", "int"),
  spec("topics.devices", "TOPIC_DEVICES", "string"),
  spec("topics.telemetry", "TOPIC_TELEMETRY", "string"),
  spec("topics.events", "TOPIC_EVENTS", "string"),
  spec("topics.inventory", "TOPIC_INVENTORY", "string"),
  spec("topics.taskResults", "TOPIC_TASK_RESULTS", "string"),
  spec("topics.deadLetter", "TOPIC_DEAD_LETTER", "string"),
  spec("topics.checkpoint", "TOPIC_CHECKPOINT", "string"),
  spec("tenantId", "TENANT_ID", "string", "tenant-id"),
  spec("organizationId", "ORGANIZATION_ID", "string", "organization-id"),
  spec("organizationTag", "ORGANIZATION_TAG", "string"),
  spec("heartbeatSeconds", "HEARTBEAT_SECONDS", "int"),
  spec("missedHeartbeats", "MISSED_HEARTBEATS", "int"),
  spec("batch.maxEvents", "BATCH_MAX_EVENTS", "int"),
  spec("batch.lingerMs", "BATCH_LINGER_MS", "int"),
  spec("leaseSeconds", "LEASE_SECONDS", "int"),
  spec("dedupeWindowIdleDays", "DEDUPE_WINDOW_IDLE_DAYS", "int"),
  spec("kafkaUnreachableWarningSeconds", "KAFKA_UNREACHABLE_WARNING_SECONDS", "int"),
  spec("metricsListen", "METRICS_LISTEN", "string", "metrics-listen"),
];

export function bridgeFlagOptions(): Record<string, { type: "string"; multiple?: boolean }> {
  return settingsFlagOptionsOf(BRIDGE_SETTING_SPECS);
}

export interface LoadBridgeSettingsInput {
  readonly env: NodeJS.ProcessEnv;
  readonly flags?: FlagValues;
  /** Root: system paths by default. */
  readonly privileged: boolean;
}

/** Resolves the bridge's settings: defaults < settings file < environment < flags; a bad value throws SettingsError. */
export function loadBridgeSettings(input: LoadBridgeSettingsInput): {
  settings: BridgeSettings;
  settingsFile: string | null;
} {
  const env = environmentLayer(BRIDGE_SETTING_SPECS, input.env);
  const flags = flagLayer(BRIDGE_SETTING_SPECS, input.flags ?? {});
  // A replication factor of -1 reads as text, so "-1" is not taken for a flag.
  for (const layer of [env, flags]) {
    const factor = layer.get("kafka.replicationFactor");
    if (factor !== undefined) {
      const text = String(factor.value).trim();
      if (!/^-?\d+$/.test(text))
        throw new SettingsError(
          factor.label,
          `must be a whole number, or -1 for the broker's default (got ${JSON.stringify(text)})`,
        );
      layer.set("kafka.replicationFactor", { value: Number(text), label: factor.label });
    }
  }
  const defaults = defaultBridgeSettings(
    defaultBridgeDirectories(input.privileged, input.env, input.env.HOME ?? homedir()),
  );
  const configDir = String(flags.get("configDir")?.value ?? env.get("configDir")?.value ?? defaults.configDir);
  const path = join(configDir, BRIDGE_SETTINGS_FILE_NAME);
  const document = readJsonSettingsFile(path, (file) => readFileSync(file, "utf8"));
  const file =
    document === null ? new Map() : fileLayer(BRIDGE_SETTING_SPECS, document, path, { natsUrl: "natsServers" });

  const { settings, labelOf } = resolveSettings(BridgeSettings, defaults, mergeLayers([file, env, flags]));
  assertCompleteNatsEndpoint(settings, labelOf);
  assertCompleteNatsEndpoint(settings.systemAccount, labelOf, "systemAccount.");
  const { sasl, tls } = settings.kafka;
  if (
    sasl.mechanism === undefined &&
    (sasl.username !== undefined || sasl.password !== undefined || sasl.passwordFile !== undefined)
  ) {
    throw new SettingsError(
      labelOf("kafka.sasl.username"),
      "Kafka SASL credentials need a mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
    );
  }
  if (
    sasl.mechanism !== undefined &&
    (sasl.username === undefined || (sasl.password === undefined && sasl.passwordFile === undefined))
  ) {
    throw new SettingsError(
      labelOf("kafka.sasl.mechanism"),
      `SASL ${sasl.mechanism} needs a username and a password (or a password file)`,
    );
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    throw new SettingsError(
      labelOf(tls.certFile ? "kafka.tls.certFile" : "kafka.tls.keyFile"),
      "a Kafka TLS client certificate needs both the cert and the key file",
    );
  }
  const names = Object.entries(settings.topics);
  const clash = names.find(([role, name]) => names.some(([otherRole, other]) => otherRole !== role && other === name));
  if (clash)
    throw new SettingsError(
      labelOf(`topics.${clash[0]}`),
      `topic ${JSON.stringify(clash[1])} is used for two purposes; each needs its own topic`,
    );
  return { settings, settingsFile: document === null ? null : path };
}
