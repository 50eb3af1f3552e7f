import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { BRIDGE_SETTING_SPECS } from "../../../src/bridge/settings/load-bridge-settings.ts";
import { SETTING_SPECS } from "../../../src/settings/index.ts";

const root = resolve(import.meta.dirname, "../../..");

/** EDGE_ names in the code that are no error codes: environment variables and a probe's stream name. */
const NOT_CODES = new Set([
  ...[...SETTING_SPECS, ...BRIDGE_SETTING_SPECS].flatMap((spec) => spec.env),
  "EDGE_AGENT_LAUNCHER",
  "EDGE_AGENT_SUPERVISED",
  // The marker every process of a remote task carries.
  "EDGE_TASK_ID",
  "EDGE_AGENT_DOCTOR_PROBE",
  "EDGE_BRIDGE_",
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

describe("docs/error-codes.md", () => {
  it("lists every error code the agent and the bridge use, with what to do", () => {
    const codes = new Set<string>();
    for (const file of sourceFiles(join(root, "src")))
      for (const [, code] of readFileSync(file, "utf8").matchAll(/"(EDGE_[A-Z0-9_]+)"/g))
        if (code && !NOT_CODES.has(code)) codes.add(code);
    const page = readFileSync(join(root, "docs/error-codes.md"), "utf8");
    const documented = new Set([...page.matchAll(/^\| `(EDGE_[A-Z0-9_]+)`/gm)].map((match) => match[1]));
    expect([...codes].filter((code) => !documented.has(code)).sort()).toEqual([]);
    expect(codes.size).toBeGreaterThan(40);
  });
});
