import { readFileSync } from "node:fs";
import { join } from "node:path";
import { validate as isValidCron } from "node-cron";
import {
  assertCompleteNatsEndpoint,
  mergeLayers,
  readJsonSettingsFile,
  resolveSettings,
  SettingsError,
} from "../settings-kit/index.ts";
import { defaultSettings, withPlatformDefaults } from "./defaults.ts";
import { ManagementPlatform, Settings } from "./settings.ts";
import { environmentLayer, type FlagValues, fileLayer, flagLayer, type SettingsLayer } from "./sources.ts";

export const SETTINGS_FILE_NAME = "settings.json";

export interface LoadSettingsInput {
  readonly env: NodeJS.ProcessEnv;
  readonly flags?: FlagValues;
  /** The host's platform, whose default paths apply (the CLI passes the process's). */
  readonly platform: NodeJS.Platform;
  /** Root (or Windows): system paths by default. */
  readonly privileged: boolean;
  /** Stands for the settings file's content (enrollment checks a file before writing it). */
  readonly settingsDocument?: Record<string, unknown>;
}

export interface LoadedSettings {
  readonly settings: Settings;
  /** The settings file that was read, if there was one. */
  readonly settingsFile: string | null;
}

function readSettingsFile(
  configDir: string,
  given?: Record<string, unknown>,
): { layer: SettingsLayer; path: string | null } {
  const path = join(configDir, SETTINGS_FILE_NAME);
  const document = given ?? readJsonSettingsFile(path, (file) => readFileSync(file, "utf8"));
  return document === null ? { layer: new Map(), path: null } : { layer: fileLayer(document, path), path };
}

/** Resolves the one settings object: defaults < settings file < environment < flags. */
export function loadSettings(input: LoadSettingsInput): LoadedSettings {
  const defaults = defaultSettings(input.platform, input.env, input.privileged);
  const env = environmentLayer(input.env);
  const flags = flagLayer(input.flags ?? {});
  const configDir = String(flags.get("configDir")?.value ?? env.get("configDir")?.value ?? defaults.configDir);
  const file = readSettingsFile(configDir, input.settingsDocument);

  const merged = mergeLayers([file.layer, env, flags]);
  // The platform's conventions change defaults only: a value a layer gives still wins over them.
  const platform = ManagementPlatform.safeParse(merged.get("platform")?.value ?? defaults.platform);
  const { settings, labelOf } = resolveSettings(
    Settings,
    platform.success ? withPlatformDefaults(defaults, platform.data) : defaults,
    merged,
  );
  for (const path of ["telemetrySchedule", "inventorySchedule"] as const) {
    if (!isValidCron(settings[path])) {
      throw new SettingsError(
        labelOf(path),
        `${JSON.stringify(settings[path])} is not a cron expression (e.g. "0 * * * * *": seconds field allowed)`,
      );
    }
  }
  assertCompleteNatsEndpoint(settings, labelOf);
  return { settings, settingsFile: file.path };
}
