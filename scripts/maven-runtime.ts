/**
 * A Java program's runtime for the integration tests, resolved by Maven: the runtime closure of a
 * pom's dependencies copied into node_modules/.cache/<name>/libs/*.jar, plus a log4j2 configuration
 * (WARN and above to stdout, so a failing test shows what the JVM complained about). Kafka
 * (scripts/kafka-runtime.ts) and Pinot (scripts/pinot-runtime.ts) each name their pom and cache.
 *
 * npm ci wipes the cache; Maven's own ~/.m2 keeps the download, so resolving again takes seconds.
 *
 * Guarantee: the directory exists only complete. It is filled under a temporary name next to it and
 * renamed at the end, so two vitest workers resolving at once, or a run interrupted halfway, never
 * leave or see a half-filled one (the loser of a rename race drops its copy and uses the winner's).
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { delimiter, dirname, join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");

/** The cache directory of a runtime named `name` (e.g. `edge-kafka-4.4.0`). */
export function mavenRuntimeDir(name: string): string {
  return join(root, "node_modules", ".cache", name);
}

/** The JVM's own loggers at WARN and above, to stdout (the test helpers keep the tail of it). */
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
export class MavenRuntimeToolMissingError extends Error {
  readonly code = "MAVEN_RUNTIME_TOOL_MISSING";
  override readonly name = "MavenRuntimeToolMissingError";
}

/** Thrown when Maven could not resolve the jars; the message carries Maven's output. */
export class MavenRuntimeResolveError extends Error {
  readonly code = "MAVEN_RUNTIME_RESOLVE_FAILED";
  override readonly name = "MavenRuntimeResolveError";
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

async function requireTool(command: "java" | "mvn", neededBy: string): Promise<void> {
  if (await onPath(command)) return;
  throw new MavenRuntimeToolMissingError(
    `\`${command}\` is not on the PATH: ${neededBy} needs it (Debian: apt-get install ${TOOL_PACKAGES[command]})`,
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
      reject(new MavenRuntimeResolveError(`mvn ${args.join(" ")} failed (${error.message.split("\n")[0]})\n${output}`));
    });
  });
}

export interface MavenRuntime {
  /** Where the runtime lives once resolved (see `mavenRuntimeDir`). */
  readonly dir: string;
  /** The pom whose runtime dependencies are copied. */
  readonly pomPath: string;
  /** Who needs `java` and `mvn`, for the error that says one is missing. */
  readonly neededBy: string;
}

/**
 * Returns the directory holding `libs/*.jar` and `log4j2.properties`, resolving them with Maven only
 * when they are missing. Requires `java` (to run them) and, when resolving, `mvn`.
 */
export async function ensureMavenRuntime(runtime: MavenRuntime): Promise<string> {
  await requireTool("java", runtime.neededBy);
  if (await isDirectory(runtime.dir)) return runtime.dir;
  await requireTool("mvn", runtime.neededBy);
  await mkdir(dirname(runtime.dir), { recursive: true });
  // Same parent as the final directory, so the rename below is atomic.
  const staging = await mkdtemp(`${runtime.dir}.partial-`);
  try {
    await runMaven([
      "-q",
      "-B",
      "-f",
      runtime.pomPath,
      "dependency:copy-dependencies",
      `-DoutputDirectory=${join(staging, "libs")}`,
      "-DincludeScope=runtime",
    ]);
    await writeFile(join(staging, "log4j2.properties"), LOG4J2_PROPERTIES);
    try {
      await rename(staging, runtime.dir);
    } catch (error) {
      // Another process finished first: its directory is as complete as ours.
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== "ENOTEMPTY" && code !== "EEXIST") || !(await isDirectory(runtime.dir))) throw error;
    }
    return runtime.dir;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** For `node scripts/<name>-runtime.ts`: resolves, prints the directory and how long it took. */
export async function resolveFromCommandLine(label: string, runtime: MavenRuntime): Promise<void> {
  const started = Date.now();
  const dir = await ensureMavenRuntime(runtime);
  console.log(dir);
  console.error(`${label} runtime ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
