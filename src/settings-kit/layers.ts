import type { z } from "zod";
import { didYouMean } from "../runtime/index.ts";
import { SettingsError } from "./errors.ts";
import { parseServerList } from "./nats-url.ts";
import { describeIssue, schemaAt, valueAt } from "./setting-problem.ts";

/**
 * The settings machinery both programs share (the agent, `EDGE_AGENT_*`, and the companion bridge,
 * `EDGE_BRIDGE_*`): each describes its settings as a list of specs, and the layers are resolved
 * the same way, defaults < settings file < environment < flags, with every bad value refused as
 * one line naming the setting the way the operator wrote it.
 */

/** One value and the name the operator gave it (an env var, a flag, a file key), for error lines. */
export interface SourcedValue {
  readonly value: unknown;
  readonly label: string;
}
/** A flat view of one source: dotted settings path -> value. */
export type SettingsLayer = Map<string, SourcedValue>;

/**
 * How a text value (environment, flag) is read. `servers` is a NATS server list whose URLs may
 * carry credentials; `list` is comma-separated; `tags` is `k=v` pairs.
 */
export type ValueKind = "string" | "int" | "bool" | "servers" | "tags" | "list";

export interface SettingSpec {
  /** Dotted path into the settings object. */
  readonly path: string;
  /** Environment names, most specific first: ours before any standard fallbacks (NATS_*). */
  readonly env: readonly string[];
  readonly flag?: string;
  readonly kind: ValueKind;
  /**
   * For `servers`: where credentials written into a URL go (`<prefix>auth.user`, ...). Default:
   * the top-level `auth`.
   */
  readonly authPrefix?: string;
  /** One line for `--help`: what the setting does. */
  readonly help?: string;
  /** The value's name in `--help` (`--nats-url URL`). */
  readonly valueName?: string;
}

function parseTextValue(spec: SettingSpec, raw: string | readonly string[], label: string, layer: SettingsLayer): void {
  const text = Array.isArray(raw) ? raw.join(",") : (raw as string);
  switch (spec.kind) {
    case "string":
      layer.set(spec.path, { value: text, label });
      return;
    case "int": {
      // A negative number is a whole number too: the schema says which range it must be in.
      if (!/^\s*-?\d+\s*$/.test(text))
        throw new SettingsError(label, `must be a whole number (got ${JSON.stringify(text)})`);
      layer.set(spec.path, { value: Number.parseInt(text, 10), label });
      return;
    }
    case "bool": {
      const normalized = text.trim().toLowerCase();
      if (!["true", "false", "1", "0", "yes", "no"].includes(normalized)) {
        throw new SettingsError(label, `must be true or false (got ${JSON.stringify(text)})`);
      }
      layer.set(spec.path, { value: ["true", "1", "yes"].includes(normalized), label });
      return;
    }
    case "servers":
      setServers(spec, parseServerList(text, label), label, layer);
      return;
    case "list":
      layer.set(spec.path, {
        value: text
          .split(",")
          .map((entry) => entry.trim())
          .filter((entry) => entry !== ""),
        label,
      });
      return;
    case "tags": {
      const pairs = Array.isArray(raw) ? raw : text.split(",");
      layer.set(spec.path, { value: parseTags(pairs, label), label });
      return;
    }
  }
}

function setServers(
  spec: SettingSpec,
  parsed: ReturnType<typeof parseServerList>,
  label: string,
  layer: SettingsLayer,
): void {
  layer.set(spec.path, { value: parsed.servers, label });
  const prefix = spec.authPrefix ?? "";
  // Credentials written into the URL only fill what this same source does not say explicitly.
  const fill = (key: string, value: string | undefined): void => {
    if (value !== undefined && !layer.has(`${prefix}auth.${key}`)) layer.set(`${prefix}auth.${key}`, { value, label });
  };
  fill("user", parsed.user);
  fill("password", parsed.password);
  fill("token", parsed.token);
}

export function parseTags(pairs: readonly string[], label: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs.map((entry) => entry.trim()).filter((entry) => entry !== "")) {
    const separator = pair.indexOf("=");
    if (separator <= 0) throw new SettingsError(label, `tag ${JSON.stringify(pair)} must be key=value`);
    tags[pair.slice(0, separator).trim()] = pair.slice(separator + 1).trim();
  }
  return tags;
}

export function environmentLayer(specs: readonly SettingSpec[], env: NodeJS.ProcessEnv): SettingsLayer {
  const layer: SettingsLayer = new Map();
  // Standard fallbacks first, so our own names, applied after, win within this one source.
  for (const spec of specs) {
    for (const name of [...spec.env].reverse()) {
      const raw = env[name];
      if (raw === undefined || raw === "") continue;
      parseTextValue(spec, raw, name, layer);
    }
  }
  return layer;
}

export type FlagValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

/** The flags `parseArgs` should accept for these settings. */
export function settingsFlagOptionsOf(
  specs: readonly SettingSpec[],
): Record<string, { type: "string"; multiple?: boolean }> {
  const options: Record<string, { type: "string"; multiple?: boolean }> = {};
  for (const spec of specs) {
    if (spec.flag) options[spec.flag] = spec.kind === "tags" ? { type: "string", multiple: true } : { type: "string" };
  }
  return options;
}

export function flagLayer(specs: readonly SettingSpec[], flags: FlagValues): SettingsLayer {
  const layer: SettingsLayer = new Map();
  for (const spec of specs) {
    if (!spec.flag) continue;
    const raw = flags[spec.flag];
    if (raw === undefined || typeof raw === "boolean") continue;
    if (Array.isArray(raw) && raw.some((entry) => typeof entry !== "string")) continue;
    parseTextValue(spec, raw as string | string[], `--${spec.flag}`, layer);
  }
  return layer;
}

/**
 * A settings file uses the settings' own names, nested as in the settings object. A `servers`
 * setting may also be given under `urlKey` (e.g. `natsUrl`: a string or list, credentials allowed).
 * Record-valued settings (`tags`) are taken whole. An unknown key is refused rather than silently
 * ignored: it is almost always a typo.
 */
export function fileLayer(
  specs: readonly SettingSpec[],
  document: Record<string, unknown>,
  fileName: string,
  urlKeys: Readonly<Record<string, string>> = {},
): SettingsLayer {
  const layer: SettingsLayer = new Map();
  const byPath = new Map(specs.map((spec) => [spec.path, spec]));
  const knownKeys = [...specs.map((spec) => spec.path), ...Object.keys(urlKeys)];
  const unknown = (label: string, path: string): SettingsError =>
    new SettingsError(label, `is not a known setting${didYouMean(path, knownKeys, (key) => JSON.stringify(key))}`);
  const visit = (value: unknown, path: string): void => {
    const label = `${fileName} ${path}`;
    const serversPath = urlKeys[path] ?? (byPath.get(path)?.kind === "servers" ? path : undefined);
    const serversSpec = serversPath === undefined ? undefined : byPath.get(serversPath);
    if (serversSpec) {
      if (typeof value === "string") {
        setServers(serversSpec, parseServerList(value, label), label, layer);
        return;
      }
      if (Array.isArray(value) && value.every((entry) => typeof entry === "string")) {
        setServers(serversSpec, parseServerList(value.join(","), label), label, layer);
        return;
      }
      throw new SettingsError(label, "must be a URL string or a list of them");
    }
    if (byPath.has(path)) {
      layer.set(path, { value, label });
      return;
    }
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const known = specs.some((spec) => spec.path.startsWith(`${path}.`));
      if (!known) throw unknown(label, path);
      for (const [key, child] of Object.entries(value)) visit(child, `${path}.${key}`);
      return;
    }
    throw unknown(label, path);
  };
  for (const [key, value] of Object.entries(document)) {
    if (key.startsWith("__")) continue;
    visit(value, key);
  }
  return layer;
}

/** Later layers win. */
export function mergeLayers(layers: readonly SettingsLayer[]): SettingsLayer {
  const merged: SettingsLayer = new Map();
  for (const layer of layers) for (const [path, value] of layer) merged.set(path, value);
  return merged;
}

export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    if (child === null || typeof child !== "object") node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

/**
 * Applies the merged layers over the defaults and validates the result against `schema`. A
 * failure names the source that set the offending value: the deepest part of its path some layer
 * gave, else the default.
 */
export function resolveSettings<Schema extends z.ZodType>(
  schema: Schema,
  defaults: z.input<Schema>,
  merged: SettingsLayer,
): { settings: z.output<Schema>; labelOf: (path: string) => string } {
  const candidate = structuredClone(defaults) as unknown as Record<string, unknown>;
  for (const [path, { value }] of merged) setPath(candidate, path, value);
  const labelOf = (path: string): string => merged.get(path)?.label ?? `default ${path}`;
  const parsed = schema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const issuePath = issue?.path.map(String) ?? [];
    let setting = `default ${issuePath.join(".")}`;
    for (let depth = issuePath.length; depth > 0; depth--) {
      const path = issuePath.slice(0, depth).join(".");
      if (merged.has(path)) {
        setting = labelOf(path);
        break;
      }
    }
    throw new SettingsError(
      setting,
      issue ? describeIssue(issue, valueAt(candidate, issue.path), schemaAt(schema, issue.path)) : "is invalid",
    );
  }
  return { settings: parsed.data, labelOf };
}

/**
 * Reads a JSON settings file. It is written with `conf` (enrollment, operators), which owns its
 * format and atomic writes; reading it is a plain JSON parse, so a daemon does not load conf and
 * its JSON-schema machinery (about 25 MB of resident memory) just to read a few keys.
 */
export function readJsonSettingsFile(path: string, read: (path: string) => string): Record<string, unknown> | null {
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new SettingsError(path, `cannot be read: ${(error as Error).message}`, { cause: error });
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new SettingsError(path, `cannot be read: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    throw new SettingsError(path, "cannot be read: it must hold a JSON object");
  }
  return document as Record<string, unknown>;
}
