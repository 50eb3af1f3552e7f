/**
 * The layers of docs/DESIGN.md ("Layers of `src/` and which may import which") as the rows below,
 * and the Biome rules that check them (biome.json's `overrides`, written from these rows: never by
 * hand). `npm run lint` runs Biome, so CI fails on an import the layers forbid, with a message that
 * names the importing file (and line), the import, and the rule.
 *
 * What the rules say, for every folder of src/ (the bridge's folders each count as one):
 * - outside its own folder it imports only the folders of the rows below its own, in its own column,
 *   each only through that folder's index.ts (its one public face); the bridge's folders may also
 *   import the shared rows, and only bridge/cli imports cli-kit; its own files never import its own
 *   index.ts;
 * - only cli/, cli-kit/ and bridge/cli/ touch `process` (runtime/host.ts and
 *   telemetry/agent-collectors.ts excepted, see PROCESS_EXCEPTIONS);
 * - nothing but src/bridge/kafka/client/ imports @platformatic/kafka.
 * Biome matches the import as written (not the file it resolves to): a folder's own relative path is
 * the only way these rules let it reach another, so an import written any other way is refused.
 *
 * Run `node scripts/layer-rules.ts` after adding a folder (put it in its row first) or changing a
 * row: it rewrites biome.json's `overrides`. test/unit/layers/layer-rules.test.ts fails while
 * biome.json and these rows disagree.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, posix, relative } from "node:path";

const root = join(import.meta.dirname, "..");

/** The agent's column, top to bottom: a folder imports only from the rows below its own. */
export const AGENT_ROWS: readonly (readonly string[])[] = [
  ["cli"],
  ["cli-kit"],
  ["simulator", "service"],
  ["agent"],
  ["lifecycle", "telemetry", "config", "config-push", "tools", "update", "uninstall", "tasks", "rpc", "metrics"],
  ["commands"],
  ["capability"],
  ["events"],
  ["transport", "trust", "identity", "download", "settings"],
  ["outbox"],
  ["settings-kit", "metrics-kit"],
  ["runtime"],
  ["contracts"],
  ["errors"],
];

/** The bridge's column (src/bridge/ itself is `bridge`), top to bottom. */
export const BRIDGE_ROWS: readonly (readonly string[])[] = [
  ["bridge/cli"],
  ["bridge"],
  ["bridge/metrics"],
  ["bridge/devices", "bridge/service", "bridge/pinot"],
  ["bridge/shards"],
  ["bridge/state"],
  ["bridge/kafka"],
  ["bridge/records"],
  ["bridge/source", "bridge/dedupe", "bridge/settings"],
];

/** The agent's rows the bridge may import (below all of its own); cli-kit only from bridge/cli. */
export const SHARED_WITH_BRIDGE: readonly string[] = [
  "transport",
  "settings-kit",
  "metrics-kit",
  "runtime",
  "contracts",
  "errors",
];

const PROCESS_READERS = new Set(["cli", "cli-kit", "bridge/cli"]);
/** Library files that read the process itself, each for a reason DESIGN gives. */
export const PROCESS_EXCEPTIONS: readonly string[] = ["src/runtime/host.ts", "src/telemetry/agent-collectors.ts"];
/** Files outside src/ a folder imports as data. */
const DATA_IMPORTS: Readonly<Record<string, readonly string[]>> = {
  runtime: ["package.json"],
  "bridge/pinot": ["pinot/*.json"],
};

const KAFKA_RULE = "Kafka goes through src/bridge/kafka/client/ (the one adapter, pinned by its conformance test).";
const PROCESS_RULE =
  "layers (docs/DESIGN.md): only cli/, cli-kit/ and bridge/cli/ read the process; library code is handed what it needs";

const OWN_FACE_RULE =
  "layers (docs/DESIGN.md): a folder's own files import each other directly, never through its index.ts (an index that imports itself makes load-order cycles)";

/** What each layer unit may import of ours: the rows below it. */
export function allowedImports(): ReadonlyMap<string, readonly string[]> {
  const allowed = new Map<string, readonly string[]>();
  AGENT_ROWS.forEach((row, index) => {
    for (const unit of row) allowed.set(unit, AGENT_ROWS.slice(index + 1).flat());
  });
  BRIDGE_ROWS.forEach((row, index) => {
    const kit = row.includes("bridge/cli") ? ["cli-kit"] : [];
    for (const unit of row) allowed.set(unit, [...BRIDGE_ROWS.slice(index + 1).flat(), ...kit, ...SHARED_WITH_BRIDGE]);
  });
  return allowed;
}

/** The layer unit a folder of src/ belongs to: `src/cli/doctor` is `cli`, `src/bridge/kafka/client` is `bridge/kafka`. */
export function unitOf(folder: string): string {
  const [, first, second] = folder.split("/");
  if (first === undefined) throw new Error(`not a folder of src/: ${folder}`);
  if (first !== "bridge") return first;
  return second === undefined ? "bridge" : `bridge/${second}`;
}

/** Every folder of src/ that holds TypeScript, as `src/...`, sorted. */
export function sourceFolders(dir = join(root, "src")): string[] {
  const entries = readdirSync(dir, { withFileTypes: true });
  const own = entries.some((entry) => entry.isFile() && entry.name.endsWith(".ts")) ? [relative(root, dir)] : [];
  const below = entries.filter((entry) => entry.isDirectory()).flatMap((entry) => sourceFolders(join(dir, entry.name)));
  return [...own, ...below].sort();
}

function relativeImport(fromFolder: string, target: string): string {
  const path = posix.relative(fromFolder, target);
  return path.startsWith("..") ? path : `./${path}`;
}

/** biome.json's `overrides`: one per folder of src/, then the process exceptions. */
export function layerOverrides(folders: readonly string[]): unknown[] {
  const allowed = allowedImports();
  const overrides: unknown[] = folders.map((folder) => {
    const unit = unitOf(folder);
    const imports = allowed.get(unit);
    if (imports === undefined)
      throw new Error(
        `${folder}/ is in no row of scripts/layer-rules.ts: put ${unit} in the row docs/DESIGN.md's picture gives it`,
      );
    const unitFolder = `src/${unit}`;
    const group = [
      "../**",
      ...(folder === "src/bridge" ? ["./*/**"] : []),
      ...(folder !== unitFolder ? ["!../*.ts"] : []),
      ...imports.map((other) => `!${relativeImport(folder, `src/${other}/index.ts`)}`),
      ...(DATA_IMPORTS[unit] ?? []).map((file) => `!${relativeImport(folder, file)}`),
      "./../**",
    ];
    const names = imports.length > 0 ? imports.map((other) => `${other}/`).join(", ") : "nothing of ours";
    const patterns: unknown[] = [
      {
        group,
        message: `layers (docs/DESIGN.md, 'Layers of src/'): outside its own folder, src/${unit}/ imports only ${names} and each only through its index.ts (its one public face)`,
      },
    ];
    patterns.push({
      group: folder === unitFolder ? ["./index.ts"] : ["./index.ts", "../index.ts"],
      message: OWN_FACE_RULE,
    });
    const rules: Record<string, unknown> = {};
    if (!PROCESS_READERS.has(unit)) {
      patterns.push({ group: ["process", "node:process"], message: PROCESS_RULE });
      rules.noRestrictedGlobals = {
        level: "error",
        options: { deniedGlobals: { process: `${PROCESS_RULE} (exceptions: scripts/layer-rules.ts)` } },
      };
    }
    const kafka = folder === "src/bridge/kafka/client" ? {} : { paths: { "@platformatic/kafka": KAFKA_RULE } };
    rules.noRestrictedImports = { level: "error", options: { ...kafka, patterns } };
    return { includes: [`${folder}/*.ts`], linter: { rules: { style: rules } } };
  });
  overrides.push({
    includes: [...PROCESS_EXCEPTIONS],
    linter: { rules: { style: { noRestrictedGlobals: "off" } } },
  });
  return overrides;
}

if (import.meta.main) {
  const file = join(root, "biome.json");
  const config = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  config.overrides = layerOverrides(sourceFolders());
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  execFileSync(join(root, "node_modules/.bin/biome"), ["format", "--write", file], { stdio: "ignore" });
  process.stdout.write(`biome.json: ${(config.overrides as unknown[]).length} layer overrides written\n`);
}
