/**
 * The runtime of a real Apache Pinot cluster for the integration tests and `npm run platform`
 * (scripts/local-services/pinot-cluster-process.ts)
 * and of Pinot's own config validator (test/integration/pinot/pinot-configs.test.ts): the jars of
 * `org.apache.pinot:pinot-tools` and `pinot-kafka-2.0` and their runtime closure, resolved by Maven from
 * scripts/pinot-runtime/pom.xml into node_modules/.cache/edge-pinot-<version>/ (scripts/maven-runtime.ts
 * says how, and what it guarantees). The two Java programs next to the pom (PinotCluster.java,
 * ValidatePinotConfigs.java) run as single-file sources against these jars: nothing is compiled ahead.
 *
 * Version: 0.11.0 is the newest Pinot whose cluster modules (pinot-tools, -server, -broker, -kafka-2.0)
 * the Maven Central reachable here holds complete; newer releases have only some modules there.
 *
 * Run as a script (`node scripts/pinot-runtime.ts`) it resolves and prints the directory.
 */
import { join } from "node:path";
import { ensureMavenRuntime, type MavenRuntime, mavenRuntimeDir, resolveFromCommandLine } from "./maven-runtime.ts";

/** Names the cache directory: keep it equal to `pinot.version` in scripts/pinot-runtime/pom.xml. */
export const PINOT_VERSION = "0.11.0";

/** The pom and the single-file Java programs run against the jars. */
export const PINOT_RUNTIME_SOURCES = join(import.meta.dirname, "pinot-runtime");

/** Where the runtime lives once resolved. */
export const PINOT_RUNTIME_DIR = mavenRuntimeDir(`edge-pinot-${PINOT_VERSION}`);

const PINOT_RUNTIME: MavenRuntime = {
  dir: PINOT_RUNTIME_DIR,
  pomPath: join(PINOT_RUNTIME_SOURCES, "pom.xml"),
  neededBy: "the Pinot cluster and config validator of the tests",
};

/** Returns the directory holding `libs/*.jar` and `log4j2.properties`, resolving them only when missing. */
export function ensurePinotRuntime(): Promise<string> {
  return ensureMavenRuntime(PINOT_RUNTIME);
}

if (import.meta.main) await resolveFromCommandLine(`pinot ${PINOT_VERSION}`, PINOT_RUNTIME);
