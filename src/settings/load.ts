import { readFileSync } from "node:fs";
import { join } from "node:path";
import { validate as isValidCron } from "node-cron";
import { defaultSettings } from "./defaults.ts";
import { SettingsError } from "./errors.ts";
import { Settings } from "./settings.ts";
import { environmentLayer, fileLayer, flagLayer, type FlagValues, type SettingsLayer } from "./sources.ts";

export const SETTINGS_FILE_NAME = "settings.json";

export interface LoadSettingsInput {
  readonly env: NodeJS.ProcessEnv;
  readonly flags?: FlagValues;
  readonly platform?: NodeJS.Platform;
  /** Root (or Windows): system paths by default. Detected when absent. */
  readonly privileged?: boolean;
}

export interface LoadedSettings {
  readonly settings: Settings;
  /** The settings file that was read, if there was one. */
  readonly settingsFile: string | null;
}

/**
 * Reads the settings file. It is written with `conf` (enrollment, operators), which owns its
 * format and atomic writes; reading it is a plain JSON parse, so the daemon does not load conf and
 * its JSON-schema machinery (about 25 MB of resident memory) just to read a few keys.
 */
function readSettingsFile(configDir: string): { layer: SettingsLayer; path: string | null } {
  const path = join(configDir, SETTINGS_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { layer: new Map(), path: null };
    throw new SettingsError(path, `cannot be read: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new SettingsError(path, `cannot be read: not valid JSON (${(error as Error).message})`);
  }
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    throw new SettingsError(path, "cannot be read: it must hold a JSON object");
  }
  return { layer: fileLayer(document as Record<string, unknown>, path), path };
}

/** Resolves the one settings object: defaults < settings file < environment < flags. */
export function loadSettings(input: LoadSettingsInput): LoadedSettings {
  const platform = input.platform ?? process.platform;
  const defaults = defaultSettings(platform, input.env, input.privileged);
  const env = environmentLayer(input.env);
  const flags = flagLayer(input.flags ?? {});
  const configDir = String(flags.get("configDir")?.value ?? env.get("configDir")?.value ?? defaults.configDir);
  const file = readSettingsFile(configDir);

  const merged: SettingsLayer = new Map();
  for (const layer of [file.layer, env, flags]) for (const [path, value] of layer) merged.set(path, value);

  const candidate = structuredClone(defaults) as unknown as Record<string, unknown>;
  for (const [path, { value }] of merged) setPath(candidate, path, value);

  const labelOf = (path: string): string => merged.get(path)?.label ?? `default ${path}`;
  const parsed = Settings.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const issuePath = issue?.path.map(String) ?? [];
    // Name the source that set the offending value: the deepest part of its path some source gave.
    let setting = `default ${issuePath.join(".")}`;
    for (let depth = issuePath.length; depth > 0; depth--) {
      const path = issuePath.slice(0, depth).join(".");
      if (merged.has(path)) {
        setting = labelOf(path);
        break;
      }
    }
    throw new SettingsError(setting, issue?.message ?? "is invalid");
  }
  const settings = parsed.data;
  for (const path of ["telemetrySchedule", "inventorySchedule"] as const) {
    if (!isValidCron(settings[path])) {
      throw new SettingsError(labelOf(path), `${JSON.stringify(settings[path])} is not a cron expression (e.g. "0 * * * * *": seconds field allowed)`);
    }
  }
  const { auth } = settings;
  if (auth.password !== undefined && auth.user === undefined) {
    throw new SettingsError(labelOf("auth.password"), "a password needs a user");
  }
  const tlsGiven = [settings.tls.certFile, settings.tls.keyFile].filter((file) => file !== undefined).length;
  if (tlsGiven === 1) throw new SettingsError(labelOf(settings.tls.certFile ? "tls.certFile" : "tls.keyFile"), "a TLS client certificate needs both the cert and the key file");
  return { settings, settingsFile: file.path };
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    if (child === null || typeof child !== "object") node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}
