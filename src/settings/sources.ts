import { parseServerList } from "./nats-url.ts";
import { SettingsError } from "./errors.ts";

/** One value and the name the operator gave it (an env var, a flag, a file key), for error lines. */
export interface SourcedValue {
  readonly value: unknown;
  readonly label: string;
}
/** A flat view of one source: dotted settings path -> value. */
export type SettingsLayer = Map<string, SourcedValue>;

type ValueKind = "string" | "int" | "bool" | "servers" | "tags";

interface SettingSpec {
  readonly path: string;
  /** Environment names, most specific first: ours before the standard NATS_* fallbacks. */
  readonly env: readonly string[];
  readonly flag?: string;
  readonly kind: ValueKind;
}

export const SETTING_SPECS: readonly SettingSpec[] = [
  { path: "natsServers", env: ["EDGE_AGENT_NATS_URL", "NATS_URL"], flag: "nats-url", kind: "servers" },
  { path: "machineId", env: ["EDGE_AGENT_MACHINE_ID"], flag: "machine-id", kind: "string" },
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
  { path: "configSigningKey", env: ["EDGE_AGENT_CONFIG_SIGNING_KEY"], flag: "config-signing-key", kind: "string" },
  { path: "tags", env: ["EDGE_AGENT_TAGS"], flag: "tag", kind: "tags" },
];

const SPEC_BY_PATH = new Map(SETTING_SPECS.map((spec) => [spec.path, spec]));

function parseTextValue(kind: ValueKind, raw: string | readonly string[], label: string, layer: SettingsLayer, path: string): void {
  const text = Array.isArray(raw) ? raw.join(",") : (raw as string);
  switch (kind) {
    case "string":
      layer.set(path, { value: text, label });
      return;
    case "int": {
      if (!/^\s*\d+\s*$/.test(text)) throw new SettingsError(label, `must be a whole number (got ${JSON.stringify(text)})`);
      layer.set(path, { value: Number.parseInt(text, 10), label });
      return;
    }
    case "bool": {
      const normalized = text.trim().toLowerCase();
      if (!["true", "false", "1", "0", "yes", "no"].includes(normalized)) {
        throw new SettingsError(label, `must be true or false (got ${JSON.stringify(text)})`);
      }
      layer.set(path, { value: ["true", "1", "yes"].includes(normalized), label });
      return;
    }
    case "servers":
      setServers(parseServerList(text, label), label, layer);
      return;
    case "tags": {
      const pairs = Array.isArray(raw) ? raw : text.split(",");
      layer.set(path, { value: parseTags(pairs, label), label });
      return;
    }
  }
}

function setServers(parsed: ReturnType<typeof parseServerList>, label: string, layer: SettingsLayer): void {
  layer.set("natsServers", { value: parsed.servers, label });
  // Credentials written into the URL only fill what this same source does not say explicitly.
  if (parsed.user !== undefined && !layer.has("auth.user")) layer.set("auth.user", { value: parsed.user, label });
  if (parsed.password !== undefined && !layer.has("auth.password")) layer.set("auth.password", { value: parsed.password, label });
  if (parsed.token !== undefined && !layer.has("auth.token")) layer.set("auth.token", { value: parsed.token, label });
}

function parseTags(pairs: readonly string[], label: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs.map((entry) => entry.trim()).filter((entry) => entry !== "")) {
    const separator = pair.indexOf("=");
    if (separator <= 0) throw new SettingsError(label, `tag ${JSON.stringify(pair)} must be key=value`);
    tags[pair.slice(0, separator).trim()] = pair.slice(separator + 1).trim();
  }
  return tags;
}

export function environmentLayer(env: NodeJS.ProcessEnv): SettingsLayer {
  const layer: SettingsLayer = new Map();
  // Standard NATS_* names first, so our own names, applied after, win within this one source.
  for (const spec of SETTING_SPECS) {
    for (const name of [...spec.env].reverse()) {
      const raw = env[name];
      if (raw === undefined || raw === "") continue;
      parseTextValue(spec.kind, raw, name, layer, spec.path);
    }
  }
  return layer;
}

export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** The flags `parseArgs` should accept for settings. */
export function settingsFlagOptions(): Record<string, { type: "string"; multiple?: boolean }> {
  const options: Record<string, { type: "string"; multiple?: boolean }> = {};
  for (const spec of SETTING_SPECS) {
    if (spec.flag) options[spec.flag] = spec.kind === "tags" ? { type: "string", multiple: true } : { type: "string" };
  }
  return options;
}

export function flagLayer(flags: FlagValues): SettingsLayer {
  const layer: SettingsLayer = new Map();
  for (const spec of SETTING_SPECS) {
    if (!spec.flag) continue;
    const raw = flags[spec.flag];
    if (raw === undefined || typeof raw === "boolean") continue;
    if (Array.isArray(raw) && raw.some((entry) => typeof entry !== "string")) continue;
    parseTextValue(spec.kind, raw as string | string[], `--${spec.flag}`, layer, spec.path);
  }
  return layer;
}

/**
 * The settings file (`settings.json` in the config dir, kept by `conf`) uses the settings' own
 * names, nested as in `Settings`, plus `natsUrl` (a string or list, credentials allowed) for the
 * servers. An unknown key is refused rather than silently ignored: it is almost always a typo.
 */
export function fileLayer(document: Record<string, unknown>, fileName: string): SettingsLayer {
  const layer: SettingsLayer = new Map();
  const visit = (value: unknown, path: string): void => {
    const label = `${fileName} ${path}`;
    if (path === "natsUrl" || path === "natsServers") {
      if (typeof value === "string") return setServers(parseServerList(value, label), label, layer);
      if (Array.isArray(value) && value.every((entry) => typeof entry === "string")) {
        return setServers(parseServerList(value.join(","), label), label, layer);
      }
      throw new SettingsError(label, "must be a URL string or a list of them");
    }
    if (path === "tags") {
      layer.set(path, { value, label });
      return;
    }
    if (SPEC_BY_PATH.has(path)) {
      layer.set(path, { value, label });
      return;
    }
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const known = SETTING_SPECS.some((spec) => spec.path.startsWith(`${path}.`));
      if (!known) throw new SettingsError(label, "is not a known setting");
      for (const [key, child] of Object.entries(value)) visit(child, `${path}.${key}`);
      return;
    }
    throw new SettingsError(label, "is not a known setting");
  };
  for (const [key, value] of Object.entries(document)) {
    if (key.startsWith("__")) continue;
    visit(value, key);
  }
  return layer;
}
