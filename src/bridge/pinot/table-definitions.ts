import devicesSchema from "../../../pinot/devices.schema.json" with { type: "json" };
import devicesTable from "../../../pinot/devices.table.json" with { type: "json" };
import eventsSchema from "../../../pinot/machine_events.schema.json" with { type: "json" };
import eventsTable from "../../../pinot/machine_events.table.json" with { type: "json" };
import telemetrySchema from "../../../pinot/machine_telemetry.schema.json" with { type: "json" };
import telemetryTable from "../../../pinot/machine_telemetry.table.json" with { type: "json" };
import taskResultsSchema from "../../../pinot/task_results.schema.json" with { type: "json" };
import taskResultsTable from "../../../pinot/task_results.table.json" with { type: "json" };
import { EdgeError } from "../../errors/index.ts";

/**
 * The Pinot schemas and REALTIME tables the bridge's topics feed (the JSON files in `pinot/`), rendered
 * for one deployment. The files hold placeholders: `${topics.devices}`, `${topics.telemetry}`,
 * `${topics.events}`, `${topics.taskResults}`, `${kafka.brokers}`, `${replication}`, and `${partitions}` (the topic's partition
 * count, which every table states in its segmentPartitionConfig: Pinot's upsert and dedup keep state
 * per partition, so a topic with another count would split a key's history).
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface TemplateValues {
  readonly topics: {
    readonly devices: string;
    readonly telemetry: string;
    readonly events: string;
    readonly taskResults: string;
  };
  /** `host:port,...` as Pinot's servers reach Kafka. */
  readonly kafkaBrokers: string;
  readonly partitions: number;
  readonly replication: number;
}

export interface PinotTableDefinition {
  /** Schema and table share this name. */
  readonly name: string;
  /** Which bridge topic the table reads. */
  readonly topicRole: "devices" | "telemetry" | "events" | "taskResults";
  readonly schema: JsonObject;
  readonly table: JsonObject;
}

export class PinotTemplateError extends EdgeError {
  readonly code = "EDGE_BRIDGE_PINOT_TEMPLATE";
  constructor(message: string) {
    super(message);
    this.name = "PinotTemplateError";
  }
}

const TEMPLATES = [
  { name: "devices", topicRole: "devices", schema: devicesSchema, table: devicesTable },
  { name: "machine_telemetry", topicRole: "telemetry", schema: telemetrySchema, table: telemetryTable },
  { name: "machine_events", topicRole: "events", schema: eventsSchema, table: eventsTable },
  { name: "task_results", topicRole: "taskResults", schema: taskResultsSchema, table: taskResultsTable },
] as const;

const PLACEHOLDER = /\$\{([A-Za-z.]+)\}/g;

function placeholderValues(values: TemplateValues): Map<string, string | number> {
  return new Map<string, string | number>([
    ["topics.devices", values.topics.devices],
    ["topics.telemetry", values.topics.telemetry],
    ["topics.events", values.topics.events],
    ["topics.taskResults", values.topics.taskResults],
    ["kafka.brokers", values.kafkaBrokers],
    ["partitions", values.partitions],
    ["replication", values.replication],
  ]);
}

/** Replaces placeholders; a string that is exactly one numeric placeholder becomes a JSON number. */
export function renderTemplate(template: unknown, values: TemplateValues): JsonValue {
  const known = placeholderValues(values);
  const render = (node: unknown): JsonValue => {
    if (typeof node === "string") {
      const whole = /^\$\{([A-Za-z.]+)\}$/.exec(node);
      const wholeValue = whole?.[1] === undefined ? undefined : known.get(whole[1]);
      if (typeof wholeValue === "number" && whole?.[1] === "partitions") return wholeValue;
      return node.replace(PLACEHOLDER, (_match, key: string) => {
        const value = known.get(key);
        if (value === undefined) throw new PinotTemplateError(`unknown placeholder \${${key}} in a pinot/ template`);
        return String(value);
      });
    }
    if (Array.isArray(node)) return node.map(render);
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, render(value)]));
    }
    return node as JsonValue;
  };
  return render(template);
}

export function pinotTableDefinitions(values: TemplateValues): PinotTableDefinition[] {
  return TEMPLATES.map((template) => ({
    name: template.name,
    topicRole: template.topicRole,
    schema: renderTemplate(template.schema, values) as JsonObject,
    table: renderTemplate(template.table, values) as JsonObject,
  }));
}
