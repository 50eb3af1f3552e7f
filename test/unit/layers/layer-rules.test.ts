import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { layerOverrides, sourceFolders } from "../../../scripts/layer-rules.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const ROOT = join(import.meta.dirname, "../../..");
const BIOME = join(ROOT, "node_modules/.bin/biome");

interface Finding {
  readonly path: string;
  readonly line: number;
  readonly rule: string;
  readonly message: string;
}

/** Lints `files` (path under the project -> source) with the project's biome.json, in a scratch copy. */
function lint(files: Record<string, string>): Finding[] {
  const project = scratchDir("edge-layer-rules-");
  copyFileSync(join(ROOT, "biome.json"), join(project, "biome.json"));
  cpSync(join(ROOT, "biome-plugins"), join(project, "biome-plugins"), { recursive: true });
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(project, path)), { recursive: true });
    writeFileSync(join(project, path), source);
  }
  const run = spawnSync(BIOME, ["lint", "--vcs-enabled=false", "--reporter=json", "--max-diagnostics=100", "src"], {
    cwd: project,
    encoding: "utf8",
    timeout: 60_000,
  });
  const report = JSON.parse(run.stdout) as {
    diagnostics: Array<{
      category: string;
      message: string;
      location: { path: string; start: { line: number } };
      advices?: unknown;
    }>;
  };
  return report.diagnostics.map((diagnostic) => ({
    path: diagnostic.location.path,
    line: diagnostic.location.start.line,
    rule: diagnostic.category,
    message: `${diagnostic.message} ${JSON.stringify(diagnostic.advices ?? "")}`,
  }));
}

describe("the layers of docs/DESIGN.md and its rules on errors, as biome.json checks them (npm run lint)", () => {
  it("biome.json holds the rules scripts/layer-rules.ts makes of the rows, one per folder of src/ (a new folder must be given its row)", () => {
    const config = JSON.parse(readFileSync(join(ROOT, "biome.json"), "utf8")) as { overrides: unknown[] };
    const folders = sourceFolders();
    expect(folders).toContain("src/bridge/kafka/client");
    expect(config.overrides).toEqual(layerOverrides(folders));
    expect(() => layerOverrides([...folders, "src/newcomer"])).toThrow(
      "src/newcomer/ is in no row of scripts/layer-rules.ts",
    );
  });

  it("refuses an import from a row above, between capabilities, past a public face or through its own, across the two programs, and the process outside the CLIs", () => {
    const findings = lint({
      "src/outbox/above.ts":
        'import { createNatsLink } from "../transport/index.ts";\nexport const x = createNatsLink;\n',
      "src/tools/sibling.ts":
        'import { remoteConfigCapability } from "../config/index.ts";\nexport const x = remoteConfigCapability;\n',
      "src/agent/deep.ts": 'import { openOutbox } from "../outbox/outbox.ts";\nexport const x = openOutbox;\n',
      "src/bridge/shards/agent-only.ts":
        'import { openOutbox } from "../../outbox/index.ts";\nexport const x = openOutbox;\n',
      "src/cli/bridge.ts": 'import { createBridge } from "../bridge/index.ts";\nexport const x = createBridge;\n',
      "src/config/process.ts": 'import { env } from "node:process";\nexport const x = [env.HOME, process.pid];\n',
      "src/outbox/own-face.ts": 'import { openOutbox } from "./index.ts";\nexport const x = openOutbox;\n',
      "src/bridge/records/kafka.ts": 'import { Producer } from "@platformatic/kafka";\nexport const x = Producer;\n',
    });
    expect(findings.map(({ path, line, rule }) => `${path}:${line} ${rule}`).sort()).toEqual([
      "src/agent/deep.ts:1 lint/style/noRestrictedImports",
      "src/bridge/records/kafka.ts:1 lint/style/noRestrictedImports",
      "src/bridge/shards/agent-only.ts:1 lint/style/noRestrictedImports",
      "src/cli/bridge.ts:1 lint/style/noRestrictedImports",
      "src/config/process.ts:1 lint/style/noRestrictedImports",
      "src/config/process.ts:2 lint/style/noRestrictedGlobals",
      "src/outbox/above.ts:1 lint/style/noRestrictedImports",
      "src/outbox/own-face.ts:1 lint/style/noRestrictedImports",
      "src/tools/sibling.ts:1 lint/style/noRestrictedImports",
    ]);
    const about = (path: string) =>
      findings.filter((finding) => finding.path === path).map((finding) => finding.message);
    expect(about("src/outbox/above.ts")).toEqual([
      expect.stringContaining(
        "layers (docs/DESIGN.md, 'Layers of src/'): outside its own folder, src/outbox/ imports only",
      ),
    ]);
    expect(about("src/bridge/shards/agent-only.ts")).toEqual([
      expect.stringContaining("src/bridge/shards/ imports only"),
    ]);
    // The global's own words (biome.json's deniedGlobals) show in the terminal, not in the JSON report.
    expect(about("src/config/process.ts")).toEqual([
      expect.stringContaining("only cli/, cli-kit/ and bridge/cli/ read the process"),
      expect.stringContaining("Do not use the global variable process"),
    ]);
    expect(about("src/outbox/own-face.ts")).toEqual([expect.stringContaining("never through its index.ts")]);
    expect(about("src/bridge/records/kafka.ts")).toEqual([
      expect.stringContaining("Kafka goes through src/bridge/kafka/client/"),
    ]);
  });

  it("lets through what the layers allow: a row below through its index, the shared rows from the bridge, a folder's own files, the process in the CLIs", () => {
    const findings = lint({
      "src/outbox/below.ts": 'import { systemClock } from "../runtime/index.ts";\nexport const x = systemClock;\n',
      "src/bridge/shards/shared.ts":
        'import { createNatsLink } from "../../transport/index.ts";\nimport { KafkaHealth } from "../kafka/index.ts";\nexport const x = [createNatsLink, KafkaHealth];\n',
      "src/bridge/wiring.ts": 'import { DeviceStore } from "./devices/index.ts";\nexport const x = DeviceStore;\n',
      "src/cli/doctor/own.ts":
        'import { subjectMatcher } from "../subject-pattern.ts";\nexport const x = subjectMatcher;\n',
      "src/cli/process.ts": "export const x = process.env.HOME;\n",
      "src/bridge/kafka/client/library.ts":
        'import { Producer } from "@platformatic/kafka";\nexport const x = Producer;\n',
    });
    expect(findings).toEqual([]);
  });

  it("refuses a decision on an error's message text (its class or code decides), and lets other messages be", () => {
    const findings = lint({
      "src/transport/decides.ts": [
        "export function permanent(error: Error, reason: string): boolean {",
        '  if (error.message.includes("max_payload")) return true;',
        "  if (/max_payload/i.test((error as Error).message)) return true;",
        '  return error.message === "payload too large" || reason.length > 0;',
        "}",
        "",
      ].join("\n"),
      "src/tools/reads.ts":
        'export const x = (record: { message: { version: string } }, error: Error) => [record.message.version === "1", error.message.length];\n',
    });
    expect(findings.map(({ path, line, rule }) => `${path}:${line} ${rule}`)).toEqual([
      "src/transport/decides.ts:2 plugin",
      "src/transport/decides.ts:3 plugin",
      "src/transport/decides.ts:4 plugin",
    ]);
    expect(findings[0]?.message).toContain("a decision on an error's message text");
  });
});
