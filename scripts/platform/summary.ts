import { relative } from "node:path";
import { DEFAULT_TOPICS } from "../../src/contracts/index.ts";
import type { PinotEndpoints } from "../local-services/pinot-cluster-process.ts";
import type { PlatformPorts } from "./platform-state.ts";

export interface PlatformSummary {
  readonly stateDir: string;
  /** Where the command runs from: paths are shown relative to it when inside it. */
  readonly cwd: string;
  readonly ports: PlatformPorts;
  readonly pinot: PinotEndpoints;
  readonly natsServerVersion: string;
  readonly kafkaVersion: string;
  readonly pinotVersion: string;
  readonly machineIds: readonly string[];
  readonly firstRowSeconds: number;
}

export const FIRST_ROW_QUERY = "SELECT machineId, status, osType, tagKeyValues FROM devices LIMIT 10";

/** What runs where and how to use it: printed once everything is up. */
export function formatSummary(summary: PlatformSummary): string {
  const show = (path: string): string => {
    const inside = relative(summary.cwd, path);
    return inside && !inside.startsWith("..") ? inside : path;
  };
  const { ports } = summary;
  const dir = (part: string): string => show(`${summary.stateDir}/${part}`);
  const natsUrl = `nats://127.0.0.1:${ports.nats}`;
  const rows: Array<[string, string, string]> = [
    [`nats-server ${summary.natsServerVersion}`, `${natsUrl} (JetStream; no credentials needed)`, dir("nats")],
    [`Kafka ${summary.kafkaVersion}`, `127.0.0.1:${ports.kafka}`, dir("kafka")],
    [
      `Pinot ${summary.pinotVersion}`,
      `controller ${summary.pinot.controllerUrl} (web console), broker ${summary.pinot.brokerUrl}`,
      dir("pinot"),
    ],
    ["edge-bridge", "group edge-bridge, instance platform", dir("bridge")],
    ...summary.machineIds.map((machineId): [string, string, string] => [
      `agent ${machineId}`,
      `machine.${machineId}.* on ${natsUrl}`,
      dir(`agents/${machineId}`),
    ]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const where = Math.max(...rows.map(([, address]) => address.length));
  const npmPrefix = summary.stateDir === `${summary.cwd}/.platform` ? "" : ` --state-dir ${summary.stateDir}`;
  const query = JSON.stringify({ sql: FIRST_ROW_QUERY });
  return [
    "",
    `The platform runs; the first device row was queryable in Pinot ${summary.firstRowSeconds.toFixed(1)} s after the command.`,
    "",
    ...rows.map(([name, address, data]) => `  ${name.padEnd(width)}  ${address.padEnd(where)}  ${data}`),
    `  ${"logs".padEnd(width)}  ${dir("logs")}/*.log`,
    "",
    "Read what the bridge wrote to Kafka (read_committed, JSON lines; --follow keeps reading):",
    `  npm run -s bridge -- tail ${DEFAULT_TOPICS.devices} --kafka-brokers 127.0.0.1:${ports.kafka}`,
    "Query Pinot:",
    `  curl -s ${summary.pinot.brokerUrl}/query/sql -H 'content-type: application/json' -d '${query}'`,
    "Point another agent at it (another terminal; a machine id of its own):",
    `  EDGE_AGENT_NATS_URL=${natsUrl} EDGE_AGENT_MACHINE_ID=my-laptop npm start`,
    `  (another machine: nats-server listens on 127.0.0.1 only)`,
    `Ctrl-C stops everything. npm run platform${npmPrefix} again reuses this state; --fresh starts over.`,
    "",
  ].join("\n");
}
