/**
 * Apache Kafka's own command-line tools for the integration tests: the jars of
 * `org.apache.kafka:kafka-tools` and its runtime closure, resolved by Maven from
 * scripts/kafka-tools-runtime/pom.xml into node_modules/.cache/edge-kafka-tools-<version>/
 * (scripts/maven-runtime.ts says how, and what it guarantees). The exactly-once tests read Kafka
 * back with its own Java consumer (read_committed, test/helpers/kafka-reader/): a reader we did not write.
 *
 * Run as a script (`node scripts/kafka-tools-runtime.ts`) it resolves and prints the directory.
 */
import { join } from "node:path";
import { KAFKA_VERSION } from "./kafka-runtime.ts";
import { ensureMavenRuntime, type MavenRuntime, mavenRuntimeDir, resolveFromCommandLine } from "./maven-runtime.ts";

/** Where the runtime lives once resolved. */
export const KAFKA_TOOLS_RUNTIME_DIR = mavenRuntimeDir(`edge-kafka-tools-${KAFKA_VERSION}`);

const KAFKA_TOOLS_RUNTIME: MavenRuntime = {
  dir: KAFKA_TOOLS_RUNTIME_DIR,
  pomPath: join(import.meta.dirname, "kafka-tools-runtime", "pom.xml"),
  neededBy: "Kafka's Java consumer, which the exactly-once tests read Kafka back with",
};

/** Returns the directory holding `libs/*.jar` and `log4j2.properties`, resolving them only when missing. */
export function ensureKafkaToolsRuntime(): Promise<string> {
  return ensureMavenRuntime(KAFKA_TOOLS_RUNTIME);
}

if (import.meta.main) await resolveFromCommandLine(`kafka tools ${KAFKA_VERSION}`, KAFKA_TOOLS_RUNTIME);
