import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Admin, type SASLOptions } from "@platformatic/kafka";
import { ensureKafkaRuntime } from "../../scripts/kafka-runtime.ts";
import { freeLoopbackPort } from "./nats-server.ts";

/**
 * Starts a real Apache Kafka broker (scripts/kafka-runtime.ts) as its own JVM on loopback: one KRaft
 * node that is broker and controller at once, with its own temp dir (config, formatted log dir).
 * `restart()` keeps the ports and the log dir, so a test can stop or kill the broker and bring the
 * same one back with its data. Every JVM is killed on `dispose()` and when the test process exits.
 */
export interface KafkaBrokerHandle {
  /** `127.0.0.1:<port>`: the client listener (SASL_PLAINTEXT when `sasl` was given). */
  readonly bootstrap: string;
  readonly port: number;
  /** The broker's `log.dirs` (partitions and the KRaft metadata log). */
  readonly logDir: string;
  /** The running JVM's pid (a new one after each start), undefined while it is stopped. */
  pid(): number | undefined;
  /** SIGTERM (a clean shutdown), then waits for the JVM to exit. */
  stop(): Promise<void>;
  /** kill -9, as a crash would. */
  kill(): Promise<void>;
  /** Starts the JVM again (no-op while it runs); resolves once it answers a metadata request. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Kills the JVM and removes the temp dir. */
  dispose(): Promise<void>;
  /** The last ~16 KB of the JVM's stdout and stderr (log4j at WARN). */
  output(): string;
}

export interface KafkaScramUser {
  readonly user: string;
  readonly password: string;
  readonly mechanism: "SCRAM-SHA-256" | "SCRAM-SHA-512";
}

export interface KafkaSaslOptions {
  /** PLAIN users: name -> password. */
  readonly plain?: Readonly<Record<string, string>>;
  /** SCRAM credentials, written into the metadata log when the log dir is formatted. */
  readonly scram?: readonly KafkaScramUser[];
}

export interface KafkaBrokerOptions {
  /** Extra `server.properties` lines (they come last, so they override the defaults). */
  readonly properties?: Readonly<Record<string, string>>;
  /**
   * Makes the client listener SASL_PLAINTEXT with these users; the broker's own traffic stays on a
   * PLAINTEXT listener of its own. Names and passwords must not contain whitespace, quotes,
   * backslashes, `,`, `=`, `[` or `]` (they go into JAAS and `--add-scram` unescaped).
   */
  readonly sasl?: KafkaSaslOptions;
}

/**
 * Spawn to ready measured here (2 cores): ~3.5 s, ~5.5 s after a kill -9 (see broker.session.timeout.ms
 * below); formatting adds ~1 s to the first start. The deadline only bounds a broker that never comes up.
 */
const START_TIMEOUT_MS = 60_000;
/** A clean shutdown takes ~0.3 s here; past this the JVM is killed so a hung one cannot stall the suite. */
const STOP_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 16 * 1024;
const JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
const CREDENTIAL = /^[^\s"'\\,=[\]]+$/;

/** A Kafka cluster id: a random 16-byte UUID, base64url (Kafka never starts one with `-`). */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/** Kills `child` if the test process exits first, so a crashed test never leaves a JVM behind. */
function killOnProcessExit(child: ChildProcess): void {
  const killChild = (): void => {
    child.kill("SIGKILL");
  };
  process.once("exit", killChild);
  child.once("exit", () => process.off("exit", killChild));
}

/** Runs one short Kafka tool (`java -cp libs/* <mainClass> ...args`) to completion. */
async function runKafkaTool(classpath: string, mainClass: string, args: readonly string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      "java",
      [...JVM_FLAGS, "-cp", classpath, mainClass, ...args],
      { timeout: START_TIMEOUT_MS, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(
              `${mainClass} ${args.join(" ")} failed (${error.signal ?? `exit ${error.code}`})\n${stdout}${stderr}`,
            ),
          );
        else resolvePromise(stdout);
      },
    );
    killOnProcessExit(child);
  });
}

function checkCredential(what: string, value: string): void {
  if (!CREDENTIAL.test(value))
    throw new Error(`kafka-broker: unsupported characters in SASL ${what} ${JSON.stringify(value)}`);
}

interface Listeners {
  readonly lines: readonly string[];
  /** Credentials the readiness probe authenticates with (undefined: PLAINTEXT). */
  readonly probeSasl: SASLOptions | undefined;
}

function listenerProperties(
  port: number,
  controllerPort: number,
  internalPort: number,
  sasl: KafkaSaslOptions | undefined,
): Listeners {
  const controller = `CONTROLLER://127.0.0.1:${controllerPort}`;
  if (!sasl) {
    return {
      lines: [
        `listeners=PLAINTEXT://127.0.0.1:${port},${controller}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
      ],
      probeSasl: undefined,
    };
  }
  const plainUsers = Object.entries(sasl.plain ?? {});
  const scramUsers = sasl.scram ?? [];
  for (const [user, password] of plainUsers) {
    checkCredential("user", user);
    checkCredential("password", password);
  }
  for (const { user, password } of scramUsers) {
    checkCredential("user", user);
    checkCredential("password", password);
  }
  const scramMechanisms = [...new Set(scramUsers.map((scram) => scram.mechanism))];
  const mechanisms = [...(plainUsers.length > 0 ? ["PLAIN"] : []), ...scramMechanisms];
  const [firstPlain] = plainUsers;
  const [firstScram] = scramUsers;
  const probeSasl: SASLOptions | undefined = firstPlain
    ? { mechanism: "PLAIN", username: firstPlain[0], password: firstPlain[1] }
    : firstScram && { mechanism: firstScram.mechanism, username: firstScram.user, password: firstScram.password };
  if (!probeSasl) throw new Error("kafka-broker: options.sasl needs at least one PLAIN or SCRAM user");
  // CLIENT is the SASL listener tests connect to; INTERNAL carries the broker's own traffic (e.g.
  // transaction markers to itself) without the broker needing credentials of its own.
  const lines = [
    `listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort},${controller}`,
    `advertised.listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort}`,
    "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "inter.broker.listener.name=INTERNAL",
    `sasl.enabled.mechanisms=${mechanisms.join(",")}`,
  ];
  if (plainUsers.length > 0) {
    const users = plainUsers.map(([user, password]) => `user_${user}="${password}"`).join(" ");
    lines.push(
      `listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`,
    );
  }
  for (const mechanism of scramMechanisms) {
    lines.push(
      `listener.name.client.${mechanism.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    );
  }
  return { lines, probeSasl };
}

/** Everything but the listeners: one KRaft node that is broker and controller, sized for tests. */
function serverProperties(controllerPort: number, logDir: string): string[] {
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    "controller.listener.names=CONTROLLER",
    `log.dirs=${logDir}`,
    // One node: every internal topic with one replica, and few partitions (they start faster).
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=3",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "transaction.state.log.num.partitions=3",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    "group.initial.rebalance.delay.ms=0",
    // After a kill -9 the controller keeps the dead incarnation's registration until its session
    // expires (default 9 s) and refuses the new one meanwhile: a short session makes start() quick.
    "broker.heartbeat.interval.ms=500",
    "broker.session.timeout.ms=3000",
    "num.partitions=1",
    "auto.create.topics.enable=false",
  ];
}

async function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** One metadata round trip through the client listener; true once the broker lists itself. */
async function answersMetadata(bootstrap: string, sasl: SASLOptions | undefined): Promise<boolean> {
  const admin = new Admin({
    clientId: "kafka-broker-probe",
    bootstrapBrokers: [bootstrap],
    retries: 0,
    connectTimeout: 2_000,
    requestTimeout: 5_000,
    ...(sasl ? { sasl } : {}),
  });
  try {
    const metadata = await admin.metadata({ topics: [], forceUpdate: true });
    return metadata.brokers.size > 0;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

export async function startKafkaBroker(options: KafkaBrokerOptions = {}): Promise<KafkaBrokerHandle> {
  const runtimeDir = await ensureKafkaRuntime();
  const classpath = join(runtimeDir, "libs", "*");
  const dir = await mkdtemp(join(tmpdir(), "edge-kafka-"));
  const javaTmp = join(dir, "java-tmp");
  await mkdir(javaTmp);
  let child: ChildProcess | undefined;
  let output = "";
  const append = (chunk: Buffer | string): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
  };

  // On the test process's exit: each JVM is killed by its own hook (killOnProcessExit); this one
  // removes the temp dir too, killing first so the JVM cannot write into it meanwhile.
  const cleanUpOnProcessExit = (): void => {
    child?.kill("SIGKILL");
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: the process is exiting
    }
  };
  process.once("exit", cleanUpOnProcessExit);

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    const escalate = setTimeout(() => {
      append(`\n[kafka-broker] no exit ${STOP_TIMEOUT_MS} ms after ${signal}: SIGKILL\n`);
      proc.kill("SIGKILL");
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(escalate);
    if (child === proc) child = undefined;
  };

  try {
    const [port, controllerPort, internalPort] = await Promise.all([
      freeLoopbackPort(),
      freeLoopbackPort(),
      freeLoopbackPort(),
    ]);
    if (port === undefined || controllerPort === undefined || internalPort === undefined) throw new Error("no port");
    const bootstrap = `127.0.0.1:${port}`;
    const logDir = join(dir, "logs");
    const configPath = join(dir, "server.properties");
    const listeners = listenerProperties(port, controllerPort, internalPort, options.sasl);
    const properties = [
      ...serverProperties(controllerPort, logDir),
      ...listeners.lines,
      ...Object.entries(options.properties ?? {}).map(([key, value]) => `${key}=${value}`),
    ];
    await writeFile(configPath, `${properties.join("\n")}\n`);
    const scramArgs = (options.sasl?.scram ?? []).flatMap(({ user, password, mechanism }) => [
      "--add-scram",
      `${mechanism}=[name=${user},password=${password}]`,
    ]);
    await runKafkaTool(classpath, "kafka.tools.StorageTool", [
      "format",
      "--standalone",
      "--cluster-id",
      randomClusterId(),
      "--config",
      configPath,
      ...scramArgs,
    ]);

    const waitUntilReady = async (proc: ChildProcess): Promise<void> => {
      const until = Date.now() + START_TIMEOUT_MS;
      let failure: string | undefined;
      proc.once("exit", (code, signal) => (failure ??= `exited during startup (${signal ?? `code ${code}`})`));
      proc.once("error", (error) => (failure ??= `could not be started: ${error.message}`));
      for (;;) {
        if (failure) throw new Error(`kafka broker ${failure}`);
        if ((await portAccepts(port)) && (await answersMetadata(bootstrap, listeners.probeSasl))) return;
        if (Date.now() > until)
          throw new Error(`kafka broker did not answer on ${bootstrap} within ${START_TIMEOUT_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };

    const start = async (): Promise<void> => {
      if (child) return;
      const proc = spawn(
        "java",
        [
          "-Xms128m",
          "-Xmx512m",
          ...JVM_FLAGS,
          `-Dlog4j2.configurationFile=${join(runtimeDir, "log4j2.properties")}`,
          // The broker's own temp files go with its dir, not into /tmp.
          `-Djava.io.tmpdir=${javaTmp}`,
          "-cp",
          classpath,
          "kafka.Kafka",
          configPath,
        ],
        { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
      );
      child = proc;
      killOnProcessExit(proc);
      proc.stdout?.on("data", append);
      proc.stderr?.on("data", append);
      const forget = (): void => {
        if (child === proc) child = undefined;
      };
      proc.once("exit", forget);
      proc.once("error", forget);
      try {
        await waitUntilReady(proc);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n${output}`);
      }
    };

    await start();
    return {
      bootstrap,
      port,
      logDir,
      pid: () => child?.pid,
      start,
      stop: () => terminate("SIGTERM"),
      kill: () => terminate("SIGKILL"),
      async restart() {
        await terminate("SIGTERM");
        await start();
      },
      async dispose() {
        await terminate("SIGKILL");
        await rm(dir, { recursive: true, force: true });
        process.off("exit", cleanUpOnProcessExit);
      },
      output: () => output,
    };
  } catch (error) {
    await terminate("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    process.off("exit", cleanUpOnProcessExit);
    throw error;
  }
}
