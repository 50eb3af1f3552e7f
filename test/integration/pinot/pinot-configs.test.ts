import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensurePinotRuntime, PINOT_RUNTIME_SOURCES } from "../../../scripts/pinot-runtime.ts";
import {
  type JsonObject,
  type PinotTableDefinition,
  pinotTableDefinitions,
} from "../../../src/bridge/pinot/table-definitions.ts";

/**
 * Every schema and table config in pinot/ passes Pinot's own validator (ValidatePinotConfigs.java:
 * pinot-spi's parsers and TableConfigUtils.validate, what the controller runs on POST /tables), and the
 * validator does refuse broken ones, so this test can fail.
 */
interface ValidatorRun {
  readonly exitCode: number;
  readonly lines: string[];
}

let runtimeDir = "";
let workDir = "";

async function validate(
  definitions: readonly { name: string; schema: JsonObject; table: JsonObject }[],
): Promise<ValidatorRun> {
  const args: string[] = [];
  for (const definition of definitions) {
    const schemaPath = join(workDir, `${definition.name}-${args.length}.schema.json`);
    const tablePath = join(workDir, `${definition.name}-${args.length}.table.json`);
    await writeFile(schemaPath, JSON.stringify(definition.schema));
    await writeFile(tablePath, JSON.stringify(definition.table));
    args.push(schemaPath, tablePath);
  }
  return new Promise((resolve) => {
    execFile(
      "java",
      [
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        `-Dlog4j2.configurationFile=${join(runtimeDir, "log4j2.properties")}`,
        "-cp",
        join(runtimeDir, "libs", "*"),
        join(PINOT_RUNTIME_SOURCES, "ValidatePinotConfigs.java"),
        ...args,
      ],
      { timeout: 120_000 },
      (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === "number" ? error.code : -1) : 0;
        const lines = stdout.split("\n").filter((line) => /^(VALID|INVALID) /.test(line));
        if (lines.length === 0) lines.push(`no verdict: ${stdout}${stderr}`);
        resolve({ exitCode, lines });
      },
    );
  });
}

const rendered = (): PinotTableDefinition[] =>
  pinotTableDefinitions({
    topics: {
      devices: "devices-topic",
      telemetry: "machine-telemetry",
      events: "machine-events",
      taskResults: "machine-task-results",
    },
    kafkaBrokers: "127.0.0.1:9092",
    partitions: 3,
    replication: 1,
  });

function byName(name: string): PinotTableDefinition {
  const definition = rendered().find((candidate) => candidate.name === name);
  if (!definition) throw new Error(`no definition ${name}`);
  return definition;
}

describe("pinot/ schemas and table configs", () => {
  beforeAll(async () => {
    runtimeDir = await ensurePinotRuntime();
    workDir = await mkdtemp(join(tmpdir(), "edge-pinot-configs-"));
  }, 300_000);
  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("covers every file in pinot/", async () => {
    const files = (await readdir(join(PINOT_RUNTIME_SOURCES, "..", "..", "pinot"))).sort();
    const expected = rendered()
      .flatMap((definition) => [`${definition.name}.schema.json`, `${definition.name}.table.json`])
      .sort();
    expect(files).toEqual(expected);
  });

  it("are all valid by Pinot's own validator", async () => {
    const run = await validate(rendered());
    expect(run.lines).toEqual([
      "VALID devices_REALTIME",
      "VALID machine_telemetry_REALTIME",
      "VALID machine_events_REALTIME",
      "VALID task_results_REALTIME",
    ]);
    expect(run.exitCode).toBe(0);
  }, 120_000);

  it("keep what the bridge relies on: read_committed, the upsert and the dedup", () => {
    for (const definition of rendered()) {
      const streamConfigs = (definition.table.tableIndexConfig as JsonObject).streamConfigs as JsonObject;
      expect(streamConfigs["stream.kafka.isolation.level"]).toBe("read_committed");
      expect((definition.table.routing as JsonObject).instanceSelectorType).toBe("strictReplicaGroup");
    }
    expect(byName("devices").table.upsertConfig).toEqual({ mode: "FULL", comparisonColumn: "ingestionTime" });
    expect(byName("devices").schema.primaryKeyColumns).toEqual(["machineId"]);
    expect(byName("machine_telemetry").schema.primaryKeyColumns).toEqual(["eventId"]);
    expect(byName("machine_events").schema.primaryKeyColumns).toEqual(["eventId"]);
    expect(byName("task_results").schema.primaryKeyColumns).toEqual(["eventId"]);
    expect(byName("task_results").table.dedupConfig).toEqual({ dedupEnabled: true, hashFunction: "NONE" });
  });

  it("refuses broken ones, each with Pinot's reason", async () => {
    const devices = byName("devices");
    const withoutPrimaryKey = {
      ...devices,
      name: "no-primary-key",
      schema: { ...devices.schema, primaryKeyColumns: [] },
    };
    const wrongRouting = {
      ...devices,
      name: "wrong-routing",
      table: { ...devices.table, routing: { instanceSelectorType: "balanced" } },
    };
    const telemetry = byName("machine_telemetry");
    const indexOnMissingColumn = {
      ...telemetry,
      name: "missing-column",
      table: {
        ...telemetry.table,
        tableIndexConfig: { ...(telemetry.table.tableIndexConfig as JsonObject), invertedIndexColumns: ["hostname"] },
      },
    };
    const run = await validate([withoutPrimaryKey, wrongRouting, indexOnMissingColumn]);
    expect(run.exitCode).toBe(1);
    expect(run.lines).toHaveLength(3);
    for (const line of run.lines) expect(line).toMatch(/^INVALID /);
    expect(run.lines[0]).toMatch(/primary key/i);
    expect(run.lines[1]).toMatch(/strictReplicaGroup/i);
    expect(run.lines[2]).toMatch(/hostname/);
  }, 120_000);
});
