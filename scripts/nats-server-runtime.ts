/**
 * A current nats-server for the tests, benchmarks and fault suite, taken from
 * Debian's own package into node_modules/.cache/nats-server-<version>/nats-server. Nothing is
 * installed system-wide: apt runs against a private sources list, lists and cache directories of
 * its own, and the binary is unpacked with `dpkg-deb -x`.
 *
 * The mirror is the one this machine's apt already uses (read from /etc/apt/sources.list.d/*.sources
 * or /etc/apt/sources.list), so no host name is written into the repository; the suite is named by
 * the version we want (trixie holds 2.10, sid 2.15).
 *
 * Versions: CURRENT is what everything runs on; OLDEST is the oldest release we support (the suite is
 * also run on it, see docs/development.md). 2.9 and older are not supported.
 *
 * Guarantee: a version directory exists only complete (filled under a temporary name, then renamed),
 * so two vitest workers, or a run interrupted halfway, never see a half-unpacked server.
 *
 * Run as a script (`node scripts/nats-server-runtime.ts [version...]`) it fetches what is missing and
 * prints each binary's path.
 */
import { execFile } from "node:child_process";
import { access, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const cacheRoot = join(root, "node_modules", ".cache");

export interface NatsServerRelease {
  /** The upstream version, as `nats-server --version` prints it (without the `v`). */
  readonly version: string;
  /** The Debian suite whose package carries it. */
  readonly suite: string;
}

export const NATS_SERVER_RELEASES = {
  current: { version: "2.15.1", suite: "sid" },
  oldest: { version: "2.10.27", suite: "trixie" },
} as const satisfies Record<string, NatsServerRelease>;

const KNOWN: readonly NatsServerRelease[] = Object.values(NATS_SERVER_RELEASES);

/** Thrown when the server cannot be fetched; the message says what to check. */
export class NatsServerRuntimeError extends Error {
  readonly code = "NATS_SERVER_RUNTIME";
  override readonly name = "NatsServerRuntimeError";
}

/** Where a version's binary lives once fetched. */
export function natsServerBinaryPath(version: string): string {
  return join(cacheRoot, `nats-server-${version}`, "nats-server");
}

/**
 * The version the tests and benchmarks run: `EDGE_NATS_SERVER_VERSION` when set (e.g. 2.10.27 for
 * the oldest-supported run), else the current release.
 */
export function selectedNatsServerVersion(env: NodeJS.ProcessEnv = process.env): string {
  return env.EDGE_NATS_SERVER_VERSION || NATS_SERVER_RELEASES.current.version;
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

function run(command: string, args: readonly string[], cwd?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(command, [...args], { cwd, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolvePromise(stdout);
      const output = `${stdout}${stderr}`.trim().slice(-4096);
      reject(
        new NatsServerRuntimeError(`${command} ${args.join(" ")} failed (${error.message.split("\n")[0]})\n${output}`),
      );
    });
  });
}

/**
 * The Debian mirror URI this machine's apt uses for its main suites (not the security archive).
 * Reads deb822 `.sources` files first, then the one-line `sources.list` format.
 */
export function debianMirrorFrom(
  files: ReadonlyArray<{ readonly name: string; readonly text: string }>,
): string | null {
  for (const file of files.filter((entry) => entry.name.endsWith(".sources"))) {
    for (const stanza of file.text.split(/\n\s*\n/)) {
      const field = (name: string): string | undefined =>
        stanza
          .split("\n")
          .find((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))
          ?.slice(name.length + 1)
          .trim();
      const types = field("Types") ?? "";
      const uris = (field("URIs") ?? "").split(/\s+/).filter(Boolean);
      const suites = (field("Suites") ?? "").split(/\s+/).filter(Boolean);
      if (!types.split(/\s+/).includes("deb") || suites.every((suite) => suite.includes("security"))) continue;
      const uri = uris.find((candidate) => !candidate.includes("security"));
      if (uri) return uri;
    }
  }
  for (const file of files.filter((entry) => entry.name.endsWith(".list"))) {
    for (const line of file.text.split("\n")) {
      const match = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (match?.[1] && match[2] && !match[2].includes("security") && !match[1].includes("security")) return match[1];
    }
  }
  return null;
}

async function machineMirror(): Promise<string> {
  const files: Array<{ name: string; text: string }> = [];
  const partsDir = "/etc/apt/sources.list.d";
  for (const name of await readdir(partsDir).catch(() => [] as string[])) {
    if (name.endsWith(".sources") || name.endsWith(".list"))
      files.push({ name, text: await readFile(join(partsDir, name), "utf8") });
  }
  const main = await readFile("/etc/apt/sources.list", "utf8").catch(() => null);
  if (main !== null) files.push({ name: "sources.list", text: main });
  const mirror = debianMirrorFrom(files);
  if (!mirror) {
    throw new NatsServerRuntimeError(
      "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list: nats-server is taken from Debian's package",
    );
  }
  return mirror;
}

/** apt-get and apt-cache against a private sources list and state, never the machine's own. */
async function privateApt(): Promise<{ dir: string; options: string[] }> {
  const dir = join(cacheRoot, "nats-server-apt");
  const mirror = await machineMirror();
  const suites = [...new Set(KNOWN.map((release) => release.suite))];
  await mkdir(join(dir, "lists", "partial"), { recursive: true });
  await mkdir(join(dir, "cache", "archives", "partial"), { recursive: true });
  const sourcesList = join(dir, "sources.list");
  await writeFile(sourcesList, suites.map((suite) => `deb ${mirror} ${suite} main\n`).join(""));
  const options = [
    "-o",
    `Dir::Etc::sourcelist=${sourcesList}`,
    "-o",
    "Dir::Etc::sourceparts=-",
    "-o",
    `Dir::State::Lists=${join(dir, "lists")}`,
    "-o",
    `Dir::Cache=${join(dir, "cache")}`,
    "-o",
    "APT::Get::List-Cleanup=0",
    "-o",
    "Debug::NoLocking=1",
  ];
  return { dir, options };
}

/** The Debian version string of the package carrying `version` upstream (any Debian revision). */
function debianVersionOf(policyOutput: string, version: string): string | null {
  const candidates = [...policyOutput.matchAll(/^\s*(?:\*\*\*\s+)?(\S+)\s+\d+\s*$/gm)].map(
    (match) => match[1] as string,
  );
  return candidates.find((candidate) => candidate.replace(/^\d+:/, "").split("-")[0] === version) ?? null;
}

/** Fetches what is missing and returns the binary's path. */
export async function ensureNatsServer(version: string = selectedNatsServerVersion()): Promise<string> {
  const binary = natsServerBinaryPath(version);
  if (await exists(binary)) return binary;
  if (!KNOWN.some((release) => release.version === version)) {
    throw new NatsServerRuntimeError(
      `nats-server ${version} is not one this project fetches (${KNOWN.map((release) => release.version).join(", ")})`,
    );
  }
  const apt = await privateApt();
  let policy = await run("apt-cache", [...apt.options, "policy", "nats-server"]).catch(() => "");
  let debianVersion = debianVersionOf(policy, version);
  if (!debianVersion) {
    await run("apt-get", [...apt.options, "-qq", "update"]);
    policy = await run("apt-cache", [...apt.options, "policy", "nats-server"]);
    debianVersion = debianVersionOf(policy, version);
  }
  if (!debianVersion) throw new NatsServerRuntimeError(`the Debian mirror has no nats-server ${version}:\n${policy}`);
  const target = join(cacheRoot, `nats-server-${version}`);
  await mkdir(cacheRoot, { recursive: true });
  // Same parent as the final directory, so the rename below is atomic.
  const staging = await mkdtemp(`${target}.partial-`);
  try {
    await run("apt-get", [...apt.options, "-qq", "download", `nats-server=${debianVersion}`], staging);
    const deb = (await readdir(staging)).find((name) => name.endsWith(".deb"));
    if (!deb) throw new NatsServerRuntimeError(`apt-get download left no .deb for nats-server ${debianVersion}`);
    await run("dpkg-deb", ["-x", join(staging, deb), join(staging, "root")]);
    await rename(join(staging, "root", "usr", "sbin", "nats-server"), join(staging, "nats-server"));
    await rm(join(staging, "root"), { recursive: true, force: true });
    await rm(join(staging, deb), { force: true });
    const printed = await run(join(staging, "nats-server"), ["--version"]);
    if (!printed.includes(`v${version}`))
      throw new NatsServerRuntimeError(`the unpacked nats-server says ${printed.trim()}, not v${version}`);
    try {
      await rename(staging, target);
    } catch (error) {
      // Another process finished first: its directory is as complete as ours.
      const code = (error as NodeJS.ErrnoException).code;
      if (
        (code !== "ENOTEMPTY" && code !== "EEXIST") ||
        !(await stat(target).then(
          (s) => s.isDirectory(),
          () => false,
        ))
      )
        throw error;
    }
    return binary;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const wanted = process.argv.slice(2);
  const versions = wanted.length > 0 ? wanted : KNOWN.map((release) => release.version);
  for (const version of versions) {
    const started = Date.now();
    console.log(await ensureNatsServer(version));
    console.error(`nats-server ${version} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}
