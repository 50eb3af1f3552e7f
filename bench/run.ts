import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Runs every benchmark module in bench/ and writes one JSON file per benchmark to bench/results/.
 * Each module exports `name` and `run()`, which returns plain JSON (numbers and their baselines
 * measured in the same run). Select some with `npm run bench -- outbox telemetry`.
 */
interface BenchModule {
  readonly name: string;
  run(): Promise<Record<string, unknown>>;
}

const available: Record<string, () => Promise<BenchModule>> = {
  agent: () => import("./agent.ts"),
  outbox: () => import("./outbox.ts"),
  telemetry: () => import("./telemetry.ts"),
  config: () => import("./config.ts"),
  bridge: () => import("./bridge.ts"),
  "bridge-partitions": () => import("./bridge-partitions.ts"),
  "bridge-state": () => import("./bridge-state.ts"),
  pinot: () => import("./pinot.ts"),
  presence: () => import("./presence.ts"),
  fleet: () => import("./fleet.ts"),
  tasks: () => import("./tasks.ts"),
};

async function main(): Promise<void> {
  const selected = process.argv.slice(2);
  const names = selected.length > 0 ? selected : Object.keys(available);
  const outDir = join(import.meta.dirname, "results");
  await mkdir(outDir, { recursive: true });
  for (const name of names) {
    const load = available[name];
    if (!load) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(available).join(", ")}`);
    const bench = await load();
    const startedAt = new Date().toISOString();
    const result = await bench.run();
    const record = { benchmark: bench.name, startedAt, node: process.version, ...result };
    await writeFile(join(outDir, `${bench.name}.json`), `${JSON.stringify(record, null, 2)}\n`);
    console.log(JSON.stringify(record));
  }
}

await main();
