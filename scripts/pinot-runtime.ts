/**
 * The runtime of a real Apache Pinot cluster for the integration tests (test/helpers/pinot-cluster.ts)
 * and of Pinot's own config validator (test/integration/pinot/pinot-configs.test.ts): the jars of
 * `org.apache.pinot:pinot-tools` and `pinot-kafka-2.0` and their runtime closure, resolved by Maven from
 * scripts/pinot-runtime/pom.xml, plus a log4j2 configuration (WARN and above to stdout). The two Java
 * programs next to the pom (PinotCluster.java, ValidatePinotConfigs.java) run as single-file sources
 * against these jars: nothing is compiled ahead.
 *
 * Version: 0.11.0 is the newest Pinot whose cluster modules (pinot-tools, -server, -broker, -kafka-2.0)
 * the Maven Central reachable here holds complete; newer releases have only some modules there.
 *
 * Layout: node_modules/.cache/edge-pinot-<version>/{libs/*.jar,log4j2.properties}. npm ci wipes it;
 * Maven's own ~/.m2 keeps the download, so resolving again takes seconds.
 *
 * Guarantee: the directory exists only complete. It is filled under a temporary name next to it and
 * renamed at the end, so two vitest workers resolving at once, or a run interrupted halfway, never
 * leave or see a half-filled one (the loser of a rename race drops its copy and uses the winner's).
 *
 * Run as a script (`node scripts/pinot-runtime.ts`) it resolves and prints the directory.
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { delimiter, join, resolve } from "node:path";

/** Names the cache directory: keep it equal to `pinot.version` in scripts/pinot-runtime/pom.xml. */
export const PINOT_VERSION = "0.11.0";

const root = resolve(import.meta.dirname, "..");
/** The pom and the single-file Java programs run against the jars. */
export const PINOT_RUNTIME_SOURCES = join(root, "scripts", "pinot-runtime");
const pomPath = join(PINOT_RUNTIME_SOURCES, "pom.xml");

/** Where the runtime lives once resolved. */
export const PINOT_RUNTIME_DIR = join(root, "node_modules", ".cache", `edge-pinot-${PINOT_VERSION}`);

/** Pinot's (and ZooKeeper's, Helix's) loggers at WARN and above, to stdout (the cluster helper keeps the tail of it). */
const LOG4J2_PROPERTIES = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d{HH:mm:ss.SSS}] %p %m (%c{1})%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
`;

/** Thrown when `java` or `mvn` is not on the PATH; the message names the Debian packages. */
export class PinotRuntimeToolMissingError extends Error {
  readonly code = "PINOT_RUNTIME_TOOL_MISSING";
  override readonly name = "PinotRuntimeToolMissingError";
}

/** Thrown when Maven could not resolve the jars; the message carries Maven's output. */
export class PinotRuntimeResolveError extends Error {
  readonly code = "PINOT_RUNTIME_RESOLVE_FAILED";
  override readonly name = "PinotRuntimeResolveError";
}

const TOOL_PACKAGES: Readonly<Record<"java" | "mvn", string>> = {
  java: "openjdk-17-jre-headless (or default-jre-headless)",
  mvn: "maven",
};

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

async function requireTool(command: "java" | "mvn"): Promise<void> {
  if (await onPath(command)) return;
  throw new PinotRuntimeToolMissingError(
    `\`${command}\` is not on the PATH: the Pinot cluster and config validator of the tests need it ` +
      `(Debian: apt-get install ${TOOL_PACKAGES[command]})`,
  );
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (stats) => stats.isDirectory(),
    () => false,
  );
}

function runMaven(args: readonly string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile("mvn", [...args], { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolvePromise();
      const output = `${stdout}${stderr}`.trim().slice(-8192);
      reject(new PinotRuntimeResolveError(`mvn ${args.join(" ")} failed (${error.message.split("\n")[0]})\n${output}`));
    });
  });
}

/**
 * Returns the directory holding `libs/*.jar` and `log4j2.properties`, resolving them with Maven only
 * when they are missing. Requires `java` (to run them) and, when resolving, `mvn`.
 */
export async function ensurePinotRuntime(): Promise<string> {
  await requireTool("java");
  if (await isDirectory(PINOT_RUNTIME_DIR)) return PINOT_RUNTIME_DIR;
  await requireTool("mvn");
  const parent = join(PINOT_RUNTIME_DIR, "..");
  await mkdir(parent, { recursive: true });
  // Same parent as the final directory, so the rename below is atomic.
  const staging = await mkdtemp(`${PINOT_RUNTIME_DIR}.partial-`);
  try {
    await runMaven([
      "-q",
      "-B",
      "-f",
      pomPath,
      "dependency:copy-dependencies",
      `-DoutputDirectory=${join(staging, "libs")}`,
      "-DincludeScope=runtime",
    ]);
    await writeFile(join(staging, "log4j2.properties"), LOG4J2_PROPERTIES);
    try {
      await rename(staging, PINOT_RUNTIME_DIR);
    } catch (error) {
      // Another process finished first: its directory is as complete as ours.
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !(await isDirectory(PINOT_RUNTIME_DIR))) throw error;
    }
    return PINOT_RUNTIME_DIR;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const started = Date.now();
  const dir = await ensurePinotRuntime();
  console.log(dir);
  console.error(`pinot ${PINOT_VERSION} runtime ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
