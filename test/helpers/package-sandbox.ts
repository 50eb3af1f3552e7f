/**
 * A throwaway copy of this machine to install packages into: a private mount namespace whose root
 * is an overlay of the real / (read-only lower layer) with a fresh tmpfs as the writable layer, plus
 * its own /proc, /dev, /run and /tmp. Whatever dpkg, useradd or the agent write there (the dpkg
 * database, /etc/passwd, /etc/edge-agent, /var/lib/edge-agent, /usr/bin) lands in that tmpfs and
 * vanishes with it: the machine's own agent, its machine id and its undelivered events are never
 * touched, and two test runs at once each have their own package, user and directories.
 *
 * One holder process (`sleep`, chrooted into the overlay) keeps the namespace alive; commands enter
 * it with nsenter. /run is empty inside, so maintainer scripts see no systemd and start no service.
 * The network is the machine's: a server on loopback is reachable from inside.
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./wait-for.ts";

export interface PackageSandbox {
  /** The host path of a path inside the sandbox (through /proc/<holder>/root), to read or write it. */
  hostPath(inside: string): string;
  /** Runs a command inside and returns its stdout; throws on a non-zero exit, like execFileSync. */
  run(command: string, args: readonly string[]): string;
  /** Runs a command inside and returns its exit status. */
  status(command: string, args: readonly string[]): number | null;
  /** Starts a command inside (env SANDBOX_ENV unless given); its pid is the command's own (nsenter execs it). */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Kills everything still running inside, and the namespace with its files goes. */
  dispose(): Promise<void>;
}

/**
 * The environment of commands run inside: not the test's, whose TMPDIR and PATH name directories of
 * the host that the sandbox's fresh /tmp does not have.
 */
export const SANDBOX_ENV: NodeJS.ProcessEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
};

/**
 * Mounts the overlay in the new namespace and execs the holder chrooted into it. $1 is the mount
 * point (an empty directory of the host, covered by a tmpfs inside only).
 */
const SETUP = `set -e
mount -t tmpfs -o mode=0755 package-sandbox "$1"
mkdir "$1/upper" "$1/work" "$1/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root"
mount -t proc proc "$1/root/proc"
mount --rbind /dev "$1/root/dev"
mount --rbind /sys "$1/root/sys"
mount -t tmpfs -o mode=0755 run "$1/root/run"
mount -t tmpfs -o mode=1777 tmp "$1/root/tmp"
echo ready
exec chroot "$1/root" sleep infinity`;

/** Why a sandbox cannot be made here (then the package test must skip and say so), or undefined. */
export function packageSandboxUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (mount namespaces and overlay mounts)";
  for (const command of ["unshare", "nsenter", "setpriv", "chroot", "dpkg"]) {
    if (spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status !== 0) return `needs ${command}`;
  }
  // The overlay covers the root file system only: a separately mounted /usr would be missing in it.
  const probe = spawnSync(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      "mount -t tmpfs probe /mnt && mkdir /mnt/u /mnt/w /mnt/m && mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/u,workdir=/mnt/w /mnt/m && test -x /mnt/m/usr/bin/dpkg",
    ],
    { encoding: "utf8", timeout: 10_000 },
  );
  if (probe.status !== 0)
    return `cannot mount an overlay of / (with /usr on it) in a private mount namespace here: ${probe.stderr.trim() || `exit ${probe.status}`}`;
  return undefined;
}

export async function openPackageSandbox(): Promise<PackageSandbox> {
  const mountPoint = mkdtempSync(join(tmpdir(), "edge-agent-package-sandbox-"));
  // --pdeathsig: if this test process dies, the holder goes too, and the namespace with it.
  const holder = spawn(
    "setpriv",
    [
      "--pdeathsig",
      "KILL",
      "--",
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--",
      "sh",
      "-c",
      SETUP,
      "sandbox",
      mountPoint,
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  holder.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const holderExited = new Promise<void>((resolve) => holder.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on("data", (chunk: Buffer) => (chunk.toString().includes("ready") ? resolve() : undefined));
    holder.once("exit", (code) =>
      reject(new Error(`the package sandbox did not start (exit ${code}): ${output.trim()}`)),
    );
  }).catch((error: unknown) => {
    rmSync(mountPoint, { recursive: true, force: true });
    throw error;
  });
  const pid = holder.pid as number;
  const enter = (command: string, args: readonly string[]): string[] => [
    "--target",
    String(pid),
    "--mount",
    "--root",
    "--wd",
    "--",
    command,
    ...args,
  ];
  const namespace = readlinkSync(`/proc/${pid}/ns/mnt`);

  /** Processes in the sandbox's mount namespace other than the holder (what a test left running). */
  const inside = (): number[] =>
    readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== pid)
      .filter((entry) => {
        try {
          return readlinkSync(`/proc/${entry}/ns/mnt`) === namespace;
        } catch {
          return false;
        }
      })
      .map(Number);

  return {
    hostPath: (path) => `/proc/${pid}/root${path.startsWith("/") ? path : `/${path}`}`,
    run: (command, args) =>
      execFileSync("nsenter", enter(command, args), {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: SANDBOX_ENV,
      }),
    status: (command, args) => spawnSync("nsenter", enter(command, args), { stdio: "ignore", env: SANDBOX_ENV }).status,
    spawn: (command, args, options = {}) => spawn("nsenter", enter(command, args), { env: SANDBOX_ENV, ...options }),
    async dispose() {
      // Bounded: a process that survives SIGKILL for a second is a kernel matter, not ours.
      await waitFor(
        "the sandbox's processes to end",
        () => {
          const left = inside();
          for (const leftover of left) {
            try {
              process.kill(leftover, "SIGKILL");
            } catch {
              // gone already
            }
          }
          return left.length === 0;
        },
        1_000,
        100,
      ).catch(() => undefined);
      if (holder.exitCode === null && holder.signalCode === null) holder.kill("SIGKILL");
      await holderExited;
      rmSync(mountPoint, { recursive: true, force: true });
    },
  };
}
