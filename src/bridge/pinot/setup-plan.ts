import type { JsonObject, JsonValue, PinotTableDefinition } from "./table-definitions.ts";

/**
 * What `edge-bridge pinot-setup` does to one schema and its table, decided from what the controller
 * holds now and the topic's partition count: a pure function, so every case is tested without a
 * cluster (src/bridge/pinot/pinot-setup.ts does the I/O).
 *
 * Pinot can add columns to a schema and change most of a table in place; it cannot change a primary
 * key, drop or retype a column, switch the upsert or dedup a table keeps, re-point a table at another
 * topic, or re-partition it (upsert and dedup state is kept per partition). Those are refused, with one
 * line naming the table and what differs, and nothing is changed for that table.
 */
export type SetupAction =
  | { readonly kind: "create-schema" | "update-schema" | "create-table"; readonly name: string }
  /** `because`: the first setting that differs, so an operator sees why a run changed something. */
  | { readonly kind: "update-table"; readonly name: string; readonly because: string }
  | { readonly kind: "unchanged"; readonly name: string; readonly what: "schema" | "table" };

export type SetupPlan =
  | { readonly ok: true; readonly actions: readonly SetupAction[] }
  | { readonly ok: false; readonly refusal: string };

export interface CurrentState {
  /** The schema as GET /schemas/{name} returns it; undefined when absent. */
  readonly schema: JsonObject | undefined;
  /** The REALTIME table config as GET /tables/{name} returns it (its `REALTIME` member); undefined when absent. */
  readonly table: JsonObject | undefined;
  /** Partitions of the topic the table reads; undefined when the topic does not exist. */
  readonly topicPartitions: number | undefined;
}

interface ColumnShape {
  readonly dataType: string;
  readonly singleValue: boolean;
}

function columnsOf(schema: JsonObject): Map<string, ColumnShape> {
  const columns = new Map<string, ColumnShape>();
  for (const group of ["dimensionFieldSpecs", "metricFieldSpecs", "dateTimeFieldSpecs", "timeFieldSpec"]) {
    const specs = schema[group];
    for (const spec of Array.isArray(specs) ? specs : []) {
      if (spec === null || typeof spec !== "object" || Array.isArray(spec)) continue;
      columns.set(String(spec.name), { dataType: String(spec.dataType), singleValue: spec.singleValueField !== false });
    }
  }
  return columns;
}

const listOf = (value: JsonValue | undefined): string[] => (Array.isArray(value) ? value.map(String) : []);

function objectAt(root: JsonObject, ...path: string[]): JsonObject | undefined {
  let node: JsonValue | undefined = root;
  for (const key of path) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    node = node[key];
  }
  return node !== null && typeof node === "object" && !Array.isArray(node) ? node : undefined;
}

/**
 * True when every member `desired` states has the same value in `actual` (the controller fills in
 * defaults and may turn numbers into strings, so scalars compare by their text).
 */
export function containsAll(actual: JsonValue | undefined, desired: JsonValue): boolean {
  if (desired === null || typeof desired !== "object")
    return actual !== undefined && actual !== null && String(actual) === String(desired);
  if (Array.isArray(desired)) {
    return (
      Array.isArray(actual) &&
      actual.length === desired.length &&
      desired.every((item, index) => containsAll(actual[index], item))
    );
  }
  if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
  return Object.entries(desired).every(([key, value]) => containsAll(actual[key], value));
}

/** The path of the first member `desired` states that `actual` does not hold (as `containsAll` judges), or null. */
export function firstDifference(actual: JsonValue | undefined, desired: JsonValue, path = ""): string | null {
  if (desired === null || typeof desired !== "object" || Array.isArray(desired))
    return containsAll(actual, desired) ? null : path || "(root)";
  if (actual === null || actual === undefined || typeof actual !== "object" || Array.isArray(actual))
    return path || "(root)";
  for (const [key, value] of Object.entries(desired)) {
    const found = firstDifference(actual[key], value, path ? `${path}.${key}` : key);
    if (found) return found;
  }
  return null;
}

/** Why the schema cannot become `desired` in place; undefined when it can. */
function schemaRefusal(name: string, current: JsonObject, desired: JsonObject): string | undefined {
  const currentKey = listOf(current.primaryKeyColumns).join(",");
  const desiredKey = listOf(desired.primaryKeyColumns).join(",");
  if (currentKey !== desiredKey) {
    return `schema ${name}: primary key is [${currentKey}] in Pinot, [${desiredKey}] here; Pinot cannot change a primary key in place (drop and recreate the table)`;
  }
  const desiredColumns = columnsOf(desired);
  for (const [column, shape] of columnsOf(current)) {
    const wanted = desiredColumns.get(column);
    if (!wanted)
      return `schema ${name}: column ${column} is in Pinot but not here; Pinot cannot drop a column in place`;
    if (wanted.dataType !== shape.dataType || wanted.singleValue !== shape.singleValue) {
      const describe = (value: ColumnShape): string => `${value.dataType}${value.singleValue ? "" : "[]"}`;
      return `schema ${name}: column ${column} is ${describe(shape)} in Pinot, ${describe(wanted)} here; Pinot cannot change a column's type in place`;
    }
  }
  return undefined;
}

function partitionsOf(table: JsonObject): number | undefined {
  const map = objectAt(table, "tableIndexConfig", "segmentPartitionConfig", "columnPartitionMap");
  const first = map && Object.values(map)[0];
  if (first === null || first === undefined || typeof first !== "object" || Array.isArray(first)) return undefined;
  const count = Number(first.numPartitions);
  return Number.isInteger(count) ? count : undefined;
}

/** Why the table cannot become `desired` in place; undefined when it can. */
function tableRefusal(name: string, current: JsonObject, desired: JsonObject): string | undefined {
  const fixed: readonly [string, JsonValue | undefined, JsonValue | undefined][] = [
    ["upsertConfig", current.upsertConfig, desired.upsertConfig],
    ["dedupConfig", current.dedupConfig, desired.dedupConfig],
  ];
  for (const [what, actual, wanted] of fixed) {
    const same =
      wanted === undefined
        ? actual === undefined || containsAll(actual, { mode: "NONE" }) || containsAll(actual, { dedupEnabled: false })
        : containsAll(actual, wanted);
    if (!same)
      return `table ${name}: ${what} is ${JSON.stringify(actual ?? null)} in Pinot, ${JSON.stringify(wanted ?? null)} here; Pinot cannot change it in place`;
  }
  const topic = (table: JsonObject): string | undefined => {
    const value = objectAt(table, "tableIndexConfig", "streamConfigs")?.["stream.kafka.topic.name"];
    return value === undefined ? undefined : String(value);
  };
  if (topic(current) !== topic(desired)) {
    return `table ${name}: reads topic ${topic(current)} in Pinot, ${topic(desired)} here; Pinot cannot re-point a table's offsets at another topic in place`;
  }
  if (partitionsOf(current) !== partitionsOf(desired)) {
    return `table ${name}: expects ${partitionsOf(current)} partitions in Pinot, ${partitionsOf(desired)} here; Pinot cannot re-partition a table in place`;
  }
  return undefined;
}

export function planPinotSetup(definition: PinotTableDefinition, current: CurrentState): SetupPlan {
  const { name, schema, table } = definition;
  const expected = partitionsOf(table);
  const topic = String(objectAt(table, "tableIndexConfig", "streamConfigs")?.["stream.kafka.topic.name"]);
  if (current.topicPartitions === undefined) {
    return {
      ok: false,
      refusal: `table ${name}: topic ${topic} does not exist (start the bridge once, or create it with ${expected} partitions)`,
    };
  }
  if (expected !== undefined && current.topicPartitions !== expected) {
    return {
      ok: false,
      refusal: `table ${name}: topic ${topic} has ${current.topicPartitions} partitions, the table expects ${expected} (the bridge's kafka.partitions); upsert and dedup need them equal`,
    };
  }
  const actions: SetupAction[] = [];
  if (!current.schema) actions.push({ kind: "create-schema", name });
  else {
    const refusal = schemaRefusal(name, current.schema, schema);
    if (refusal) return { ok: false, refusal };
    const unchanged = columnsOf(current.schema).size === columnsOf(schema).size;
    actions.push(unchanged ? { kind: "unchanged", name, what: "schema" } : { kind: "update-schema", name });
  }
  if (!current.table) actions.push({ kind: "create-table", name });
  else {
    const refusal = tableRefusal(name, current.table, table);
    if (refusal) return { ok: false, refusal };
    // Pinot stores the name with its type (`devices_REALTIME`); the rest compares as written.
    const { tableName: _name, ...comparable } = table;
    const difference = firstDifference(current.table, comparable);
    actions.push(
      difference === null
        ? { kind: "unchanged", name, what: "table" }
        : { kind: "update-table", name, because: difference },
    );
  }
  return { ok: true, actions };
}
