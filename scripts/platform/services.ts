/**
 * How each program of the local platform is started from its state dir, and when it counts as up.
 * The servers are the ones the tests run (scripts/local-services/); the bridge and the agents are
 * this checkout's own, run from the sources with this Node.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Admin } from "@platformatic/kafka";
import {
  formatKafkaStorage,
  kafkaAnswersMetadata,
  kafkaBrokerArgs,
  kafkaListeners,
  kafkaServerProperties,
} from "../local-services/kafka-broker-process.ts";
import { portAccepts } from "../local-services/loopback.ts";
import { natsServerConfig } from "../local-services/nats-server-process.ts";
import {
  type PinotEndpoints,
  pinotClusterArgs,
  pinotEndpoints,
  pinotReady,
} from "../local-services/pinot-cluster-process.ts";
import { PlatformError } from "./platform-error.ts";
import type { PlatformPorts, PlatformState } from "./platform-state.ts";
import { appendLine, ServiceProcess } from "./service-process.ts";

const root = resolve(import.meta.dirname, "../..");
export const AGENT_CLI = join(root, "src/cli/main.ts");
export const BRIDGE_CLI = join(root, "src/bridge/cli/main.ts");

/** The system account's user, for the bridge's connection that sees the server's $SYS events. */
export const SYSTEM_USER = { user: "sys", password: "sys" } as const;

/**
 * Two accounts, as a platform runs them: APP (JetStream) for agents and the bridge, which a client
 * without credentials lands in (`no_auth_user`), so `npm start` with no settings just connects; and
 * the system account, whose connection shows the bridge each agent's connect and disconnect.
 */
const NATS_ACCOUNTS = [
  "server_name: edge-platform",
  "accounts {",
  `  SYS: { users: [{ user: ${SYSTEM_USER.user}, password: ${SYSTEM_USER.password} }] }`,
  "  APP: { jetstream: enabled, users: [{ user: app, password: app }] }",
  "}",
  "system_account: SYS",
  "no_auth_user: app",
];

/** A child's environment: this process's, without any EDGE_AGENT_* or EDGE_BRIDGE_* an operator's shell sets. */
export function cleanEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith("EDGE_AGENT_") && !key.startsWith("EDGE_BRIDGE_")) env[key] = value;
  return { ...env, ...extra };
}

function logFile(state: PlatformState, name: string): string {
  mkdirSync(state.logsDir, { recursive: true });
  return join(state.logsDir, `${name}.log`);
}

async function waitUntil(
  service: ServiceProcess,
  what: string,
  timeoutMs: number,
  ready: () => Promise<boolean>,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (service.exitStatus)
      throw new PlatformError(
        `${service.name} ended while starting (${describeExit(service.exitStatus)}); its log, ${service.logFile}, ends:\n${service.logTail()}`,
      );
    if (await ready()) return;
    if (performance.now() > until)
      throw new PlatformError(`${what} within ${Math.round(timeoutMs / 1000)} s; see ${service.logFile}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 250));
  }
}

/** A JVM that ends on SIGTERM exits 143 (128 + 15): that is its clean stop. */
const JVM_SIGTERM_EXIT = 143;

export function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  if (exit.signal) return `signal ${exit.signal}`;
  return exit.code === JVM_SIGTERM_EXIT ? "stopped on SIGTERM" : `exit ${exit.code}`;
}

export async function startNatsServer(
  state: PlatformState,
  ports: PlatformPorts,
  binary: string,
): Promise<ServiceProcess> {
  const dir = state.path("nats");
  mkdirSync(dir, { recursive: true });
  const config = join(dir, "server.conf");
  writeFileSync(config, natsServerConfig(ports.nats, join(dir, "jetstream"), NATS_ACCOUNTS));
  const service = ServiceProcess.start({
    name: "nats-server",
    command: binary,
    args: ["-c", config],
    env: cleanEnvironment({}),
    cwd: dir,
    logFile: logFile(state, "nats-server"),
    stopTimeoutMs: 10_000,
  });
  await waitUntil(service, `nats-server did not listen on ${ports.nats}`, 15_000, () => portAccepts(ports.nats));
  return service;
}

export async function startKafka(
  state: PlatformState,
  ports: PlatformPorts,
  runtimeDir: string,
): Promise<{ service: ServiceProcess; ready: Promise<void> }> {
  const dir = state.path("kafka");
  const logDir = join(dir, "logs");
  const javaTmp = join(dir, "java-tmp");
  mkdirSync(javaTmp, { recursive: true });
  const config = join(dir, "server.properties");
  const listeners = kafkaListeners({ client: ports.kafka, controller: ports.kafkaController }, undefined);
  writeFileSync(
    config,
    `${[...kafkaServerProperties(ports.kafkaController, logDir), ...listeners.lines].join("\n")}\n`,
  );
  // A log dir is formatted once, with a cluster id of its own: a second run keeps its topics.
  if (!existsSync(join(logDir, "meta.properties"))) await formatKafkaStorage(runtimeDir, config);
  const service = ServiceProcess.start({
    name: "Kafka",
    command: "java",
    args: kafkaBrokerArgs(runtimeDir, config, javaTmp),
    env: cleanEnvironment({}),
    cwd: dir,
    logFile: logFile(state, "kafka"),
    stopTimeoutMs: 30_000,
  });
  const bootstrap = `127.0.0.1:${ports.kafka}`;
  const ready = waitUntil(
    service,
    `Kafka did not answer on ${bootstrap}`,
    120_000,
    async () => (await portAccepts(ports.kafka)) && (await kafkaAnswersMetadata(bootstrap, undefined)),
  );
  return { service, ready };
}

export function pinotEndpointsOf(ports: PlatformPorts): PinotEndpoints {
  return pinotEndpoints({
    zooKeeper: ports.pinotZooKeeper,
    controller: ports.pinotController,
    broker: ports.pinotBroker,
    serverQuery: ports.pinotServerQuery,
    serverAdmin: ports.pinotServerAdmin,
  });
}

export function startPinot(
  state: PlatformState,
  ports: PlatformPorts,
  runtimeDir: string,
): { service: ServiceProcess; ready: Promise<void> } {
  const dir = state.path("pinot");
  const javaTmp = join(dir, "java-tmp");
  mkdirSync(javaTmp, { recursive: true });
  const service = ServiceProcess.start({
    name: "Pinot",
    command: "java",
    args: pinotClusterArgs(
      runtimeDir,
      join(dir, "data"),
      {
        zooKeeper: ports.pinotZooKeeper,
        controller: ports.pinotController,
        broker: ports.pinotBroker,
        serverQuery: ports.pinotServerQuery,
        serverAdmin: ports.pinotServerAdmin,
      },
      javaTmp,
      { restartable: true },
    ),
    env: cleanEnvironment({}),
    cwd: dir,
    logFile: logFile(state, "pinot"),
    stopTimeoutMs: 20_000,
  });
  const ready = waitUntil(service, "Pinot's controller, broker and server were not up", 240_000, () =>
    pinotReady(pinotEndpointsOf(ports)),
  );
  return { service, ready };
}

export function bridgeEnvironment(state: PlatformState, ports: PlatformPorts): Record<string, string> {
  return {
    EDGE_BRIDGE_NATS_URL: `nats://127.0.0.1:${ports.nats}`,
    EDGE_BRIDGE_SYSTEM_NATS_URL: `nats://${SYSTEM_USER.user}:${SYSTEM_USER.password}@127.0.0.1:${ports.nats}`,
    EDGE_BRIDGE_KAFKA_BROKERS: `127.0.0.1:${ports.kafka}`,
    EDGE_BRIDGE_INSTANCE_ID: "platform",
    // The agents here share one NATS user: the server cannot tell them apart, their connection names can.
    EDGE_BRIDGE_TRUST_CONNECTION_NAMES: "true",
    EDGE_BRIDGE_DATA_DIR: state.path("bridge", "data"),
    EDGE_BRIDGE_CONFIG_DIR: state.path("bridge", "config"),
  };
}

export function startBridge(state: PlatformState, ports: PlatformPorts): ServiceProcess {
  const env = bridgeEnvironment(state, ports);
  // The data dir on the command line too: a leftover bridge is recognised by it (leftovers.ts).
  return ServiceProcess.start({
    name: "edge-bridge",
    command: process.execPath,
    args: [BRIDGE_CLI, "run", "--data-dir", env.EDGE_BRIDGE_DATA_DIR as string],
    env: cleanEnvironment(env),
    cwd: root,
    logFile: logFile(state, "bridge"),
    stopTimeoutMs: 15_000,
  });
}

/** Resolves once the bridge has made its Kafka topics (it does so at start), so Pinot's tables can read them. */
export async function waitForTopics(bridge: ServiceProcess, ports: PlatformPorts, topics: readonly string[]) {
  const admin = new Admin({
    clientId: "edge-platform",
    bootstrapBrokers: [`127.0.0.1:${ports.kafka}`],
    retries: 0,
    connectTimeout: 2_000,
    requestTimeout: 5_000,
  });
  try {
    await waitUntil(bridge, `the bridge did not create its topics (${topics.join(", ")})`, 60_000, async () => {
      const existing = new Set(await admin.listTopics().catch(() => [] as string[]));
      return topics.every((topic) => existing.has(topic));
    });
  } finally {
    await admin.close().catch(() => undefined);
  }
}

export function agentDataDir(state: PlatformState, machineId: string): string {
  return state.path("agents", machineId, "data");
}

export function startAgent(state: PlatformState, ports: PlatformPorts, machineId: string): ServiceProcess {
  const dataDir = agentDataDir(state, machineId);
  return ServiceProcess.start({
    name: `agent ${machineId}`,
    command: process.execPath,
    args: [AGENT_CLI, "run", "--data-dir", dataDir],
    env: cleanEnvironment({
      EDGE_AGENT_NATS_URL: `nats://127.0.0.1:${ports.nats}`,
      EDGE_AGENT_MACHINE_ID: machineId,
      EDGE_AGENT_CONFIG_DIR: state.path("agents", machineId, "config"),
      EDGE_AGENT_TAGS: "site=local",
      // A development platform: no signing key, so the agents take unsigned configuration and
      // commands (config set works as is), and say so at every start.
      EDGE_AGENT_ALLOW_UNSIGNED: "true",
    }),
    cwd: root,
    logFile: logFile(state, `agent-${machineId}`),
    stopTimeoutMs: 10_000,
    agent: true,
  });
}

/** Runs one command of ours to completion, its output into its log; returns the output, or throws with it. */
export async function runToCompletion(
  state: PlatformState,
  name: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<string> {
  const log = logFile(state, name);
  appendLine(log, `[platform] ---- ${new Date().toISOString()} running ${args.join(" ")}`);
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [...args], {
      cwd: root,
      env: cleanEnvironment(env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      appendLine(log, output.trimEnd());
      if (code === 0) return resolveRun(output);
      reject(
        new PlatformError(
          `${name} failed (${signal ? `killed after ${Math.round(timeoutMs / 1000)} s` : `exit ${code}`}):\n${output.trimEnd()}`,
        ),
      );
    });
  });
}
