import { describe, expect, it } from "vitest";
import { type CurrentState, planPinotSetup } from "../../../src/bridge/pinot/setup-plan.ts";
import {
  type JsonObject,
  type PinotTableDefinition,
  pinotTableDefinitions,
} from "../../../src/bridge/pinot/table-definitions.ts";

const definitions = pinotTableDefinitions({
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
const devices = definitions.find((definition) => definition.name === "devices") as PinotTableDefinition;
const clone = <T>(value: T): T => structuredClone(value);
const state = (overrides: Partial<CurrentState>): CurrentState => ({
  schema: undefined,
  table: undefined,
  topicPartitions: 3,
  ...overrides,
});

describe("planPinotSetup", () => {
  it("creates what is missing", () => {
    expect(planPinotSetup(devices, state({}))).toEqual({
      ok: true,
      actions: [
        { kind: "create-schema", name: "devices" },
        { kind: "create-table", name: "devices" },
      ],
    });
  });

  it("changes nothing when Pinot already holds the same (defaults added, numbers as text)", () => {
    const table = clone(devices.table);
    (table.segmentsConfig as JsonObject).replication = "1";
    table.quota = {};
    expect(planPinotSetup(devices, state({ schema: clone(devices.schema), table }))).toEqual({
      ok: true,
      actions: [
        { kind: "unchanged", name: "devices", what: "schema" },
        { kind: "unchanged", name: "devices", what: "table" },
      ],
    });
  });

  it("updates a schema that lacks a new column and a table whose retention changed", () => {
    const schema = clone(devices.schema);
    schema.dimensionFieldSpecs = (schema.dimensionFieldSpecs as JsonObject[]).filter((spec) => spec.name !== "tags");
    const table = clone(devices.table);
    (table.segmentsConfig as JsonObject).retentionTimeValue = "30";
    const plan = planPinotSetup(devices, state({ schema, table }));
    expect(plan).toEqual({
      ok: true,
      actions: [
        { kind: "update-schema", name: "devices" },
        { kind: "update-table", name: "devices", because: "segmentsConfig.retentionTimeValue" },
      ],
    });
  });

  it("takes the name Pinot stores a table under (devices_REALTIME) for the same table", () => {
    const table = { ...clone(devices.table), tableName: "devices_REALTIME" };
    const plan = planPinotSetup(devices, state({ schema: clone(devices.schema), table }));
    expect(plan).toEqual({
      ok: true,
      actions: [
        { kind: "unchanged", name: "devices", what: "schema" },
        { kind: "unchanged", name: "devices", what: "table" },
      ],
    });
  });

  it("refuses a primary key change", () => {
    const schema = clone(devices.schema);
    schema.primaryKeyColumns = ["tenantId"];
    const plan = planPinotSetup(devices, state({ schema }));
    expect(plan).toEqual({
      ok: false,
      refusal: expect.stringMatching(/^schema devices: primary key is \[tenantId\] in Pinot, \[machineId\] here/),
    });
  });

  it("refuses a dropped or retyped column", () => {
    const extra = clone(devices.schema);
    (extra.dimensionFieldSpecs as JsonObject[]).push({ name: "hostname", dataType: "STRING" });
    expect(planPinotSetup(devices, state({ schema: extra }))).toMatchObject({
      ok: false,
      refusal: expect.stringContaining("column hostname"),
    });
    const retyped = clone(devices.schema);
    (retyped.dimensionFieldSpecs as JsonObject[])[6] = { name: "tags", dataType: "STRING", singleValueField: true };
    expect(planPinotSetup(devices, state({ schema: retyped }))).toMatchObject({
      ok: false,
      refusal: expect.stringContaining("column tags is STRING in Pinot, STRING[] here"),
    });
  });

  it("refuses an upsert change, another topic and another partition count in the table", () => {
    const partial = clone(devices.table);
    partial.upsertConfig = { mode: "PARTIAL", comparisonColumn: "ingestionTime" };
    expect(planPinotSetup(devices, state({ table: partial }))).toMatchObject({
      ok: false,
      refusal: expect.stringContaining("upsertConfig"),
    });
    const otherTopic = clone(devices.table);
    ((otherTopic.tableIndexConfig as JsonObject).streamConfigs as JsonObject)["stream.kafka.topic.name"] =
      "old-devices";
    expect(planPinotSetup(devices, state({ table: otherTopic }))).toMatchObject({
      ok: false,
      refusal: expect.stringContaining("reads topic old-devices"),
    });
    const repartitioned = pinotTableDefinitions({
      ...{ topics: { devices: "devices-topic", telemetry: "t", events: "e", taskResults: "r" } },
      kafkaBrokers: "b",
      partitions: 6,
      replication: 1,
    })[0] as PinotTableDefinition;
    expect(planPinotSetup(devices, state({ table: repartitioned.table }))).toMatchObject({
      ok: false,
      refusal: expect.stringContaining("expects 6 partitions in Pinot, 3 here"),
    });
  });

  it("refuses a topic whose partition count differs from the table's, or a missing topic", () => {
    expect(planPinotSetup(devices, state({ topicPartitions: 4 }))).toEqual({
      ok: false,
      refusal:
        "table devices: topic devices-topic has 4 partitions, the table expects 3 (the bridge's kafka.partitions); upsert and dedup need them equal",
    });
    expect(planPinotSetup(devices, state({ topicPartitions: undefined }))).toMatchObject({
      ok: false,
      refusal: expect.stringContaining("does not exist"),
    });
  });
});
