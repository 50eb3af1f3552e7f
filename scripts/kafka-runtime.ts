/**
 * The runtime of a real Apache Kafka broker for the integration tests and `npm run platform`
 * (scripts/local-services/kafka-broker-process.ts):
 * the jars of `org.apache.kafka:kafka_2.13` and its runtime closure, resolved by Maven from
 * scripts/kafka-runtime/pom.xml into node_modules/.cache/edge-kafka-<version>/ (scripts/maven-runtime.ts
 * says how, and what it guarantees).
 *
 * Run as a script (`node scripts/kafka-runtime.ts`) it resolves and prints the directory.
 */
import { join } from "node:path";
import { ensureMavenRuntime, type MavenRuntime, mavenRuntimeDir, resolveFromCommandLine } from "./maven-runtime.ts";

/** Names the cache directory: keep it equal to `kafka.version` in scripts/kafka-runtime/pom.xml. */
export const KAFKA_VERSION = "4.4.0";

/** Where the runtime lives once resolved. */
export const KAFKA_RUNTIME_DIR = mavenRuntimeDir(`edge-kafka-${KAFKA_VERSION}`);

const KAFKA_RUNTIME: MavenRuntime = {
  dir: KAFKA_RUNTIME_DIR,
  pomPath: join(import.meta.dirname, "kafka-runtime", "pom.xml"),
  neededBy: "the Kafka broker of the integration tests",
};

/** Returns the directory holding `libs/*.jar` and `log4j2.properties`, resolving them only when missing. */
export function ensureKafkaRuntime(): Promise<string> {
  return ensureMavenRuntime(KAFKA_RUNTIME);
}

if (import.meta.main) await resolveFromCommandLine(`kafka ${KAFKA_VERSION}`, KAFKA_RUNTIME);
