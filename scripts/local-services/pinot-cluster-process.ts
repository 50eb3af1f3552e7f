/**
 * How a local Apache Pinot cluster is started and known to be ready: ZooKeeper, controller, broker
 * and server in one JVM (scripts/pinot-runtime/PinotCluster.java, run as a single-file source against
 * the jars scripts/pinot-runtime.ts resolves), every listener on 127.0.0.1 but the server's query
 * port (Pinot 0.11 has no host setting for it). Shared by the tests' helper
 * (test/helpers/pinot-cluster.ts) and `npm run platform` (scripts/platform/).
 *
 * Measured here (2 cores, Java 17, Pinot 0.11.0): spawn to ready ~16 s, of which ~2 s compile the
 * single-file launcher; RSS ~350 MB with -Xmx1g once ready.
 */
import { join } from "node:path";
import { PINOT_RUNTIME_SOURCES } from "../pinot-runtime.ts";
import { LOOPBACK } from "./loopback.ts";

/** A cluster that never comes up is given up on after this long; a normal start takes ~16 s. */
export const PINOT_START_TIMEOUT_MS = 120_000;
const JVM_FLAGS = ["-Xms256m", "-Xmx1g", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

export interface PinotPorts {
  readonly zooKeeper: number;
  readonly controller: number;
  readonly broker: number;
  /** The server's query port (Netty): the one listener that binds every interface. */
  readonly serverQuery: number;
  readonly serverAdmin: number;
}

export interface PinotEndpoints {
  /** `http://127.0.0.1:<port>`: the controller's REST API (schemas, tables, instances). */
  readonly controllerUrl: string;
  /** `http://127.0.0.1:<port>`: the broker (`POST /query/sql`). */
  readonly brokerUrl: string;
  readonly serverAdminUrl: string;
  /** The broker and server as the controller lists them once they joined the cluster. */
  readonly instances: readonly string[];
}

export function pinotEndpoints(ports: PinotPorts): PinotEndpoints {
  return {
    controllerUrl: `http://${LOOPBACK}:${ports.controller}`,
    brokerUrl: `http://${LOOPBACK}:${ports.broker}`,
    serverAdminUrl: `http://${LOOPBACK}:${ports.serverAdmin}`,
    instances: [`Broker_${LOOPBACK}_${ports.broker}`, `Server_${LOOPBACK}_${ports.serverQuery}`],
  };
}

/**
 * Started again on the data of a cluster that was stopped, the roles wait until ZooKeeper expires
 * the sessions they held before (their ephemeral nodes name the same instances): 30 s with Helix's
 * default. A cluster that is restarted on its data (`npm run platform`) uses this session timeout
 * instead, ZooKeeper's shortest at its 3 s tick.
 */
export const RESTARTABLE_SESSION_TIMEOUT_MS = 6_000;

/**
 * The cluster's command line: `java` and these arguments; its data in `dataDir`, Java's temp files
 * in `javaTmpdir`. `restartable`: see RESTARTABLE_SESSION_TIMEOUT_MS.
 */
export function pinotClusterArgs(
  runtimeDir: string,
  dataDir: string,
  ports: PinotPorts,
  javaTmpdir: string,
  options: { readonly restartable?: boolean } = {},
): string[] {
  return [
    ...JVM_FLAGS,
    ...(options.restartable ? [`-Dzk.session.timeout=${RESTARTABLE_SESSION_TIMEOUT_MS}`] : []),
    `-Dlog4j2.configurationFile=${join(runtimeDir, "log4j2.properties")}`,
    `-Djava.io.tmpdir=${javaTmpdir}`,
    "-cp",
    join(runtimeDir, "libs", "*"),
    join(PINOT_RUNTIME_SOURCES, "PinotCluster.java"),
    dataDir,
    ...[ports.zooKeeper, ports.controller, ports.broker, ports.serverQuery, ports.serverAdmin].map(String),
  ];
}

async function answersOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return response.ok && (await response.text()).trim() === "OK";
  } catch {
    return false;
  }
}

async function listsInstances(controllerUrl: string, expected: readonly string[]): Promise<boolean> {
  try {
    const response = await fetch(`${controllerUrl}/instances`, { signal: AbortSignal.timeout(2_000) });
    if (!response.ok) return false;
    const { instances } = (await response.json()) as { instances?: string[] };
    return expected.every((instance) => instances?.includes(instance));
  } catch {
    return false;
  }
}

/** Ready: the controller, the broker and the server answer `/health` with OK, and the controller lists both. */
export async function pinotReady(endpoints: PinotEndpoints): Promise<boolean> {
  return (
    (await answersOk(`${endpoints.controllerUrl}/health`)) &&
    (await answersOk(`${endpoints.brokerUrl}/health`)) &&
    (await answersOk(`${endpoints.serverAdminUrl}/health`)) &&
    (await listsInstances(endpoints.controllerUrl, endpoints.instances))
  );
}
