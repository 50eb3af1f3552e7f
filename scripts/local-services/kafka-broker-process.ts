/**
 * How a local Apache Kafka broker is configured, formatted, started and known to be up: one KRaft
 * node that is broker and controller at once, its jars resolved by scripts/kafka-runtime.ts. Shared
 * by the tests' helper (test/helpers/kafka-broker.ts) and `npm run platform` (scripts/platform/).
 */
import { type ChildProcess, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Admin, type SASLOptions } from "@platformatic/kafka";
import { LOOPBACK } from "./loopback.ts";

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

export interface KafkaPorts {
  /** The client listener. */
  readonly client: number;
  readonly controller: number;
  /** The broker's own traffic, needed when the client listener takes SASL. */
  readonly internal?: number;
}

/**
 * Spawn to ready measured here (2 cores): ~3.5 s, ~5.5 s after a kill -9 (see broker.session.timeout.ms
 * below); formatting adds ~1 s to the first start. The deadline only bounds a broker that never comes up.
 */
export const KAFKA_START_TIMEOUT_MS = 60_000;
const JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];
const CREDENTIAL = /^[^\s"'\\,=[\]]+$/;

/** A Kafka cluster id: a random 16-byte UUID, base64url (Kafka never starts one with `-`). */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/** Kills `child` if this process exits first, so a crash never leaves a JVM behind. */
export function killOnProcessExit(child: ChildProcess): void {
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
      { timeout: KAFKA_START_TIMEOUT_MS, killSignal: "SIGKILL" },
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

export interface KafkaListeners {
  readonly lines: readonly string[];
  /** Credentials the readiness probe authenticates with (undefined: PLAINTEXT). */
  readonly probeSasl: SASLOptions | undefined;
}

export function kafkaListeners(ports: KafkaPorts, sasl: KafkaSaslOptions | undefined): KafkaListeners {
  const controller = `CONTROLLER://${LOOPBACK}:${ports.controller}`;
  if (!sasl) {
    return {
      lines: [
        `listeners=PLAINTEXT://${LOOPBACK}:${ports.client},${controller}`,
        `advertised.listeners=PLAINTEXT://${LOOPBACK}:${ports.client}`,
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=PLAINTEXT",
      ],
      probeSasl: undefined,
    };
  }
  if (ports.internal === undefined) throw new Error("kafka-broker: a SASL client listener needs an internal port");
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
  // CLIENT is the SASL listener clients connect to; INTERNAL carries the broker's own traffic (e.g.
  // transaction markers to itself) without the broker needing credentials of its own.
  const lines = [
    `listeners=CLIENT://${LOOPBACK}:${ports.client},INTERNAL://${LOOPBACK}:${ports.internal},${controller}`,
    `advertised.listeners=CLIENT://${LOOPBACK}:${ports.client},INTERNAL://${LOOPBACK}:${ports.internal}`,
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

/** Everything but the listeners: one KRaft node that is broker and controller, sized for one machine. */
export function kafkaServerProperties(controllerPort: number, logDir: string): string[] {
  return [
    "process.roles=broker,controller",
    "node.id=1",
    `controller.quorum.bootstrap.servers=${LOOPBACK}:${controllerPort}`,
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
    // expires (default 9 s) and refuses the new one meanwhile: a short session makes a restart quick.
    "broker.heartbeat.interval.ms=500",
    "broker.session.timeout.ms=3000",
    "num.partitions=1",
    "auto.create.topics.enable=false",
  ];
}

/** Formats a new log dir for `configPath` (a fresh cluster id), with any SCRAM users in its metadata. */
export async function formatKafkaStorage(
  runtimeDir: string,
  configPath: string,
  scram: readonly KafkaScramUser[] = [],
): Promise<void> {
  const scramArgs = scram.flatMap(({ user, password, mechanism }) => [
    "--add-scram",
    `${mechanism}=[name=${user},password=${password}]`,
  ]);
  await runKafkaTool(join(runtimeDir, "libs", "*"), "kafka.tools.StorageTool", [
    "format",
    "--standalone",
    "--cluster-id",
    randomClusterId(),
    "--config",
    configPath,
    ...scramArgs,
  ]);
}

/** The broker's command line: `java` and these arguments. Its own temp files go to `javaTmpdir`. */
export function kafkaBrokerArgs(runtimeDir: string, configPath: string, javaTmpdir: string): string[] {
  return [
    "-Xms128m",
    "-Xmx512m",
    ...JVM_FLAGS,
    `-Dlog4j2.configurationFile=${join(runtimeDir, "log4j2.properties")}`,
    `-Djava.io.tmpdir=${javaTmpdir}`,
    "-cp",
    join(runtimeDir, "libs", "*"),
    "kafka.Kafka",
    configPath,
  ];
}

/** One metadata round trip through the client listener; true once the broker lists itself. */
export async function kafkaAnswersMetadata(bootstrap: string, sasl: SASLOptions | undefined): Promise<boolean> {
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
