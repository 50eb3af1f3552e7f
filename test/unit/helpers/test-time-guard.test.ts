import { execFile } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { scratchDir } from "../../helpers/scratch-dir.ts";

const ROOT = resolve(import.meta.dirname, "../../..");
const BIOME = join(ROOT, "node_modules", ".bin", "biome");
const GUARD = "biome-plugins/test-time.grit";

interface Finding {
  readonly path: string;
  readonly line: number;
  readonly message: string;
}

/** Biome's findings of the guard in `paths`, run in `cwd` with the biome.json found there. */
function guardFindings(cwd: string, paths: readonly string[]): Promise<Finding[]> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      BIOME,
      ["lint", "--vcs-enabled=false", "--reporter=json", "--max-diagnostics=none", "--colors=off", ...paths],
      { cwd, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout) => {
        let report: {
          diagnostics: Array<{
            category?: string;
            message: string;
            location?: { path?: string; start?: { line: number } };
          }>;
        };
        try {
          report = JSON.parse(stdout);
        } catch {
          reject(error ?? new Error(`biome printed no report: ${stdout.slice(0, 500)}`));
          return;
        }
        resolvePromise(
          report.diagnostics
            .filter((diagnostic) => diagnostic.category === "plugin")
            .map((diagnostic) => ({
              path: diagnostic.location?.path ?? "?",
              line: diagnostic.location?.start?.line ?? 0,
              message: diagnostic.message,
            })),
        );
      },
    );
  });
}

/** Lines ending in `// guarded` must be reported; no other line may be. */
const TEST_PROBE = `import { setTimeout as sleep } from "node:timers/promises"; // guarded
import { setInterval as every } from "timers"; // guarded
import { vi } from "vitest";
import { sleepOn, systemClock } from "../../src/runtime/clock.ts";
import { manualClock, settle } from "../helpers/manual-clock.ts";
import { holdFor, quietFor, repeatEvery, waitFor, withDeadline } from "../helpers/wait-for.ts";

vi.useFakeTimers(); // guarded
await vi.advanceTimersByTimeAsync(1_000); // guarded
vi.setSystemTime(0); // guarded
vi.useRealTimers(); // guarded
await vi.waitFor(() => true); // guarded
await new Promise((resolveLater) => setTimeout(resolveLater, 3_000)); // guarded
const beating = setInterval(() => undefined, 50); // guarded
globalThis.setTimeout(() => undefined, 10); // guarded
await sleepOn(systemClock, 100); // guarded
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // guarded
await sleep(1);
every(beating);

const clock = manualClock();
clock.advance(1_000);
clock.timers.after(10, () => undefined);
await sleepOn(clock, 10); // guarded
await settle();
await waitFor("it", () => true, 5_000);
await withDeadline("the exit", Promise.resolve(0), 5_000);
await quietFor(10, "no duplicate arrives: nothing else can show it");
await holdFor(10, "the broker stays away for the scenario");
repeatEvery(1_000, "a simulated heartbeat", () => undefined)();
await new Promise((resolveLater) => setImmediate(resolveLater));
const script = "exec sleep 60; setTimeout(";
const timers = { setTimeout: 1 };
export const used = [script, timers.setTimeout];
`;

function guardedLines(source: string): number[] {
  return source.split("\n").flatMap((line, index) => (line.endsWith("// guarded") ? [index + 1] : []));
}

describe(`the guard on time in tests (${GUARD}, npm run lint)`, () => {
  it("reports raw sleeps, raw timers and vitest's fake timers under test/ and faults/, and nothing else", async () => {
    const dir = scratchDir("ea-time-guard-");
    copyFileSync(join(ROOT, "biome.json"), join(dir, "biome.json"));
    cpSync(join(ROOT, "biome-plugins"), join(dir, "biome-plugins"), { recursive: true });
    const place = (path: string, text: string): void => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    place("test/unit/probe.test.ts", TEST_PROBE);
    place(
      "faults/scenarios/probe.ts",
      "await new Promise((resolveLater) => setTimeout(resolveLater, 500)); // guarded\n",
    );
    // The helpers that name every allowed wait may use timers; so may benchmarks, which measure time.
    place("test/helpers/wait-for.ts", readFileSync(join(ROOT, "test/helpers/wait-for.ts"), "utf8"));
    place("bench/probe.ts", "await new Promise((resolveLater) => setTimeout(resolveLater, 500));\n");

    const findings = await guardFindings(dir, ["test", "faults", "bench"]);
    const reported = (path: string): number[] =>
      findings
        .filter((finding) => finding.path === path)
        .map((finding) => finding.line)
        .sort((a, b) => a - b);
    expect(reported("test/unit/probe.test.ts")).toEqual(guardedLines(TEST_PROBE));
    expect(reported("faults/scenarios/probe.ts")).toEqual([1]);
    expect(reported("test/helpers/wait-for.ts")).toEqual([]);
    expect(reported("bench/probe.ts")).toEqual([]);
    // Each finding says what to use instead.
    expect(
      findings.every((finding) => /wait-for\.ts|manual-clock\.ts/.test(finding.message)),
      JSON.stringify(findings),
    ).toBe(true);
  }, 90_000);

  it("finds none in the repository's tests and fault scenarios", async () => {
    const findings = await guardFindings(ROOT, ["test", "faults"]);
    expect(findings.map((finding) => `${finding.path}:${finding.line} ${finding.message}`)).toEqual([]);
  }, 90_000);
});
