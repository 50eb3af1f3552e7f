import { freeLoopbackPort, loopbackPortFree } from "../local-services/loopback.ts";
import { PlatformError } from "./platform-error.ts";
import type { PlatformPorts } from "./platform-state.ts";

/**
 * The servers' usual ports, taken when free: an agent started with no settings finds NATS on 4222,
 * and Kafka and Pinot tools find their defaults. Any that is taken is replaced by a free one.
 */
export const CONVENTIONAL_PORTS: PlatformPorts = {
  nats: 4222,
  kafka: 9092,
  kafkaController: 9093,
  pinotZooKeeper: 2181,
  pinotController: 9000,
  pinotBroker: 8099,
  pinotServerQuery: 8098,
  pinotServerAdmin: 8097,
};

const PORT_NAMES: Readonly<Record<keyof PlatformPorts, string>> = {
  nats: "nats-server",
  kafka: "Kafka",
  kafkaController: "Kafka's controller",
  pinotZooKeeper: "Pinot's ZooKeeper",
  pinotController: "Pinot's controller",
  pinotBroker: "Pinot's broker",
  pinotServerQuery: "Pinot's server (queries)",
  pinotServerAdmin: "Pinot's server (admin)",
};

export interface PortProbe {
  free(port: number): Promise<boolean>;
  any(): Promise<number>;
}

const LOOPBACK_PROBE: PortProbe = { free: loopbackPortFree, any: freeLoopbackPort };

/**
 * The ports of a new platform: the conventional ones where free (unless `anyPorts`), free ones
 * otherwise, never the same one twice.
 */
export async function choosePorts(anyPorts: boolean, probe: PortProbe = LOOPBACK_PROBE): Promise<PlatformPorts> {
  const chosen: Partial<Record<keyof PlatformPorts, number>> = {};
  const taken = new Set<number>();
  for (const key of Object.keys(CONVENTIONAL_PORTS) as Array<keyof PlatformPorts>) {
    const conventional = CONVENTIONAL_PORTS[key];
    let port = !anyPorts && !taken.has(conventional) && (await probe.free(conventional)) ? conventional : undefined;
    while (port === undefined || taken.has(port)) port = await probe.any();
    taken.add(port);
    chosen[key] = port;
  }
  return chosen as PlatformPorts;
}

/** A reused platform must get its own ports back: Kafka's quorum and Pinot's instances are named by them. */
export async function assertPortsFree(ports: PlatformPorts, probe: PortProbe = LOOPBACK_PROBE): Promise<void> {
  const busy: string[] = [];
  for (const key of Object.keys(ports) as Array<keyof PlatformPorts>) {
    if (!(await probe.free(ports[key]))) busy.push(`${ports[key]} (${PORT_NAMES[key]})`);
  }
  if (busy.length > 0)
    throw new PlatformError(
      `the platform's ports are in use: ${busy.join(", ")}; stop what listens there, or start over on other ports with npm run platform -- --fresh`,
    );
}
