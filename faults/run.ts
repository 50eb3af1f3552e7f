import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { agentCrashSoak } from "./scenarios/agent-crash-soak.ts";
import { diskFull } from "./scenarios/disk-full.ts";
import { hostileInput } from "./scenarios/hostile-input.ts";
import { outboxCrashSoak } from "./scenarios/outbox-crash-soak.ts";
import type { FaultScenario, ScenarioResult } from "./support/scenario.ts";

/**
 * `npm run faults [-- scenario ...]`: the fault suite anyone can run. Loopback only, each scenario
 * bounded in time; prints one line per scenario and a total, writes faults/results/faults.json,
 * and exits 1 when anything was lost, duplicated, numbered twice, or a case was not survived.
 * `FAULTS_SEED` repeats a run's random choices.
 */
const seed = Number(process.env.FAULTS_SEED ?? Date.now() % 100_000);

const scenarios: FaultScenario[] = [
  outboxCrashSoak({ events: 20_000, maxRounds: 40, deadlineMs: 120_000, seed }),
  agentCrashSoak({ agents: 3, durationMs: 60_000, seed }),
  diskFull({ tmpfsMb: 8, phaseMs: 4_000 }),
  hostileInput({ caseDeadlineMs: 30_000 }),
];

interface Line extends ScenarioResult {
  readonly scenario: string;
  readonly summary: string;
  readonly seconds: number;
  readonly skipped?: string;
  readonly error?: string;
}

function printable(line: Line): string {
  if (line.skipped) return `${line.scenario.padEnd(22)} skipped: ${line.skipped}`;
  if (line.error) return `${line.scenario.padEnd(22)} ERROR: ${line.error}`;
  return `${line.scenario.padEnd(22)} cases ${String(line.cases).padStart(4)}  survived ${String(line.survived).padStart(4)}  lost ${line.lost}  duplicated ${line.duplicated}  reused ${line.reusedSequences}  events ${line.events}  (${line.seconds} s)`;
}

const empty = { cases: 0, survived: 0, lost: 0, duplicated: 0, reusedSequences: 0, events: 0, details: {} };

async function main(): Promise<number> {
  const selected = process.argv.slice(2);
  const unknown = selected.filter((name) => !scenarios.some((scenario) => scenario.name === name));
  if (unknown.length > 0) {
    console.error(
      `unknown scenario ${unknown.join(", ")}; known: ${scenarios.map((scenario) => scenario.name).join(", ")}`,
    );
    return 2;
  }
  const lines: Line[] = [];
  console.log(`fault suite, seed ${seed} (FAULTS_SEED=${seed} repeats it)`);
  for (const scenario of scenarios.filter((candidate) => selected.length === 0 || selected.includes(candidate.name))) {
    const startedMs = performance.now();
    const base = { scenario: scenario.name, summary: scenario.summary };
    const reason = scenario.unavailable?.() ?? null;
    let line: Line;
    if (reason) {
      line = { ...base, ...empty, seconds: 0, skipped: reason };
    } else {
      try {
        line = { ...base, ...(await scenario.run()), seconds: Math.round((performance.now() - startedMs) / 1000) };
      } catch (error) {
        line = {
          ...base,
          ...empty,
          seconds: Math.round((performance.now() - startedMs) / 1000),
          error: error instanceof Error ? error.message : String(error),
        };
      }
    }
    lines.push(line);
    console.log(printable(line));
  }
  const ran = lines.filter((line) => !line.skipped);
  const total = {
    cases: ran.reduce((sum, line) => sum + line.cases, 0),
    survived: ran.reduce((sum, line) => sum + line.survived, 0),
    lost: ran.reduce((sum, line) => sum + line.lost, 0),
    duplicated: ran.reduce((sum, line) => sum + line.duplicated, 0),
    reusedSequences: ran.reduce((sum, line) => sum + line.reusedSequences, 0),
    events: ran.reduce((sum, line) => sum + line.events, 0),
    errors: ran.filter((line) => line.error).length,
  };
  console.log(
    `TOTAL: cases ${total.cases}, survived ${total.survived}, lost ${total.lost}, duplicated ${total.duplicated}, reused sequence numbers ${total.reusedSequences}, events checked ${total.events}, errors ${total.errors}`,
  );
  const outDir = join(import.meta.dirname, "results");
  await mkdir(outDir, { recursive: true });
  await writeFile(
    join(outDir, "faults.json"),
    `${JSON.stringify(
      { startedAt: new Date().toISOString(), seed, node: process.version, total, scenarios: lines },
      null,
      2,
    )}\n`,
  );
  const clean =
    total.lost === 0 &&
    total.duplicated === 0 &&
    total.reusedSequences === 0 &&
    total.errors === 0 &&
    total.survived === total.cases;
  return clean ? 0 : 1;
}

process.exitCode = await main();
