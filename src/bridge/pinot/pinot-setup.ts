import { EdgeError } from "../../errors/index.ts";
import { kafkaClientOptions, withKafkaAdmin } from "../kafka/index.ts";
import type { BridgeSettings } from "../settings/index.ts";
import { planPinotSetup, type SetupAction } from "./setup-plan.ts";
import { type JsonObject, type PinotTableDefinition, pinotTableDefinitions } from "./table-definitions.ts";

/**
 * `edge-bridge pinot-setup --controller URL`: creates or updates the schemas and REALTIME tables of
 * pinot/ through the controller's REST API, idempotently (a second run changes nothing). Every table is
 * planned first (setup-plan.ts); when any plan is refused nothing at all is changed.
 */
export class PinotSetupRefusedError extends EdgeError {
  readonly code = "EDGE_BRIDGE_PINOT_SETUP_REFUSED";
  constructor(message: string) {
    super(message);
    this.name = "PinotSetupRefusedError";
  }
}

export class PinotControllerError extends EdgeError {
  readonly code = "EDGE_BRIDGE_PINOT_CONTROLLER";
  constructor(message: string) {
    super(message);
    this.name = "PinotControllerError";
  }
}

export interface PinotSetupOptions {
  readonly controllerUrl: string;
  /** Kafka as Pinot's servers reach it; the bridge's own brokers when not given. */
  readonly kafkaBrokersForPinot?: string;
}

async function controllerRequest(
  base: string,
  method: string,
  path: string,
  body?: JsonObject,
): Promise<JsonObject | undefined> {
  const response = await fetch(new URL(path, base), {
    method,
    // Creating a REALTIME table waits for its consuming segments: over 30 s on a 2-core test machine.
    signal: AbortSignal.timeout(120_000),
    ...(body ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  if (method === "GET" && response.status === 404) return undefined;
  const text = await response.text();
  if (!response.ok) throw new PinotControllerError(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 500)}`);
  return text ? (JSON.parse(text) as JsonObject) : {};
}

async function topicPartitions(settings: BridgeSettings, topics: readonly string[]): Promise<Map<string, number>> {
  return withKafkaAdmin(kafkaClientOptions(settings.kafka, "pinot-setup"), (admin) => admin.partitionCounts(topics));
}

function definitionsFor(settings: BridgeSettings, options: PinotSetupOptions): PinotTableDefinition[] {
  return pinotTableDefinitions({
    topics: {
      devices: settings.topics.devices,
      telemetry: settings.topics.telemetry,
      events: settings.topics.events,
      taskResults: settings.topics.taskResults,
    },
    kafkaBrokers: options.kafkaBrokersForPinot ?? settings.kafka.brokers.join(","),
    partitions: settings.kafka.partitions,
    replication: 1,
  });
}

/** Returns what was done, one action per schema and table; throws PinotSetupRefusedError with one line per refusal. */
export async function runPinotSetup(settings: BridgeSettings, options: PinotSetupOptions): Promise<SetupAction[]> {
  const base = options.controllerUrl.endsWith("/") ? options.controllerUrl : `${options.controllerUrl}/`;
  const definitions = definitionsFor(settings, options);
  const partitions = await topicPartitions(
    settings,
    definitions.map((definition) => settings.topics[definition.topicRole]),
  );
  const planned: { definition: PinotTableDefinition; actions: readonly SetupAction[] }[] = [];
  const refusals: string[] = [];
  for (const definition of definitions) {
    const schema = await controllerRequest(base, "GET", `schemas/${definition.name}`);
    const tables = await controllerRequest(base, "GET", `tables/${definition.name}?type=realtime`);
    const table = tables?.REALTIME as JsonObject | undefined;
    const plan = planPinotSetup(definition, {
      schema,
      table,
      topicPartitions: partitions.get(settings.topics[definition.topicRole]),
    });
    if (plan.ok) planned.push({ definition, actions: plan.actions });
    else refusals.push(plan.refusal);
  }
  if (refusals.length > 0)
    throw new PinotSetupRefusedError(`pinot-setup refused, nothing changed:\n${refusals.join("\n")}`);
  const done: SetupAction[] = [];
  for (const { definition, actions } of planned) {
    for (const action of actions) {
      if (action.kind === "create-schema") await controllerRequest(base, "POST", "schemas", definition.schema);
      if (action.kind === "update-schema")
        await controllerRequest(base, "PUT", `schemas/${definition.name}`, definition.schema);
      if (action.kind === "create-table") await controllerRequest(base, "POST", "tables", definition.table);
      if (action.kind === "update-table")
        await controllerRequest(base, "PUT", `tables/${definition.name}`, definition.table);
      done.push(action);
    }
  }
  return done;
}
