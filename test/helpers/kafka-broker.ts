import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureKafkaRuntime } from "../../scripts/kafka-runtime.ts";
import {
  formatKafkaStorage,
  KAFKA_START_TIMEOUT_MS,
  type KafkaSaslOptions,
  kafkaAnswersMetadata,
  kafkaBrokerArgs,
  kafkaListeners,
  kafkaServerProperties,
  killOnProcessExit,
} from "../../scripts/local-services/kafka-broker-process.ts";
import { portAccepts } from "../../scripts/local-services/loopback.ts";

export type { KafkaSaslOptions, KafkaScramUser } from "../../scripts/local-services/kafka-broker-process.ts";

import { freeLoopbackPort } from "./nats-server.ts";
import { waitFor, withDeadline } from "./wait-for.ts";

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

/** A clean shutdown takes ~0.3 s here; past this the JVM is killed so a hung one cannot stall the suite. */
const STOP_TIMEOUT_MS = 30_000;
const OUTPUT_LIMIT = 16 * 1024;

export async function startKafkaBroker(options: KafkaBrokerOptions = {}): Promise<KafkaBrokerHandle> {
  const runtimeDir = await ensureKafkaRuntime();
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
    await withDeadline(`the broker's exit after ${signal}`, exited, STOP_TIMEOUT_MS).catch(() => {
      append(`\n[kafka-broker] no exit ${STOP_TIMEOUT_MS} ms after ${signal}: SIGKILL\n`);
      proc.kill("SIGKILL");
      return exited;
    });
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
    const listeners = kafkaListeners(
      { client: port, controller: controllerPort, internal: internalPort },
      options.sasl,
    );
    const properties = [
      ...kafkaServerProperties(controllerPort, logDir),
      ...listeners.lines,
      ...Object.entries(options.properties ?? {}).map(([key, value]) => `${key}=${value}`),
    ];
    await writeFile(configPath, `${properties.join("\n")}\n`);
    await formatKafkaStorage(runtimeDir, configPath, options.sasl?.scram);

    const waitUntilReady = async (proc: ChildProcess): Promise<void> => {
      let failure: string | undefined;
      proc.once("exit", (code, signal) => (failure ??= `exited during startup (${signal ?? `code ${code}`})`));
      proc.once("error", (error) => (failure ??= `could not be started: ${error.message}`));
      const outcome = await waitFor(
        `the kafka broker to answer on ${bootstrap}`,
        async () =>
          failure ??
          ((await portAccepts(port)) && (await kafkaAnswersMetadata(bootstrap, listeners.probeSasl)) && "ready"),
        KAFKA_START_TIMEOUT_MS,
        100,
      );
      if (outcome !== "ready") throw new Error(`kafka broker ${outcome}`);
    };

    const start = async (): Promise<void> => {
      if (child) return;
      const proc = spawn("java", kafkaBrokerArgs(runtimeDir, configPath, javaTmp), {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
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
