/**
 * Can the service user start this executable? systemd starts `ExecStart` as `User=edge-agent` inside
 * the unit's sandbox: every directory on the way must be searchable by that user, the file
 * executable by it, and none of it under a path the unit hides (ProtectHome=yes hides /home, /root
 * and /run/user; PrivateTmp=yes gives the service its own /tmp and /var/tmp). An executable under
 * /root passes none of that, and its unit would fail at every start. The decision is a pure function
 * of modes and owners; collecting them is the only side effect (collectPathEntries).
 */
import { lstat, realpath } from "node:fs/promises";
import { dirname } from "node:path";

/** One path on the way to the executable, root first, the executable itself last. */
export interface PathEntry {
  readonly path: string;
  /** Permission bits (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly isDirectory: boolean;
}

/** Who the service runs as; `uid` undefined when the account does not exist yet (it will be a new system user). */
export interface ServiceAccount {
  readonly name: string;
  readonly uid: number | undefined;
  readonly gids: readonly number[];
}

export type Reachability = { readonly reachable: true } | { readonly reachable: false; readonly reason: string };

/** Paths a unit makes invisible or private to its service, read from its hardening directives. */
export function pathsHiddenByUnit(unit: string): Array<{ readonly path: string; readonly directive: string }> {
  const hidden: Array<{ path: string; directive: string }> = [];
  // read-only leaves them visible; yes and tmpfs make them empty or inaccessible.
  const protectHome = /^ProtectHome=(yes|true|tmpfs)$/m.exec(unit)?.[0];
  if (protectHome) for (const path of ["/home", "/root", "/run/user"]) hidden.push({ path, directive: protectHome });
  if (/^PrivateTmp=(yes|true)$/m.test(unit))
    for (const path of ["/tmp", "/var/tmp"]) hidden.push({ path, directive: "PrivateTmp=yes" });
  return hidden;
}

/** The permission class that applies to the account (owner, group or other) and whether it has `bit` in it. */
function permits(entry: PathEntry, account: ServiceAccount, bit: 0o1 | 0o4): boolean {
  if (account.uid === 0) return true;
  if (account.uid !== undefined && account.uid === entry.uid) return (entry.mode & (bit << 6)) !== 0;
  if (account.gids.includes(entry.gid)) return (entry.mode & (bit << 3)) !== 0;
  return (entry.mode & bit) !== 0;
}

const octal = (mode: number): string => mode.toString(8).padStart(4, "0");

/**
 * Whether `account` can start the last entry of `chain` (root first) under a unit hiding `hidden`.
 * The reason names the first path in the way and why.
 */
export function executableReachability(
  chain: readonly PathEntry[],
  account: ServiceAccount,
  hidden: ReturnType<typeof pathsHiddenByUnit> = [],
): Reachability {
  const executable = chain.at(-1);
  if (!executable || executable.isDirectory)
    return { reachable: false, reason: `${executable?.path ?? "the executable"} is not a file` };
  const hiding = hidden.find(({ path }) => executable.path === path || executable.path.startsWith(`${path}/`));
  if (hiding)
    return {
      reachable: false,
      reason: `${executable.path} is under ${hiding.path}, which the unit's ${hiding.directive} hides from the service`,
    };
  for (const entry of chain.slice(0, -1)) {
    if (!permits(entry, account, 0o1)) {
      return {
        reachable: false,
        reason: `${entry.path} (mode ${octal(entry.mode)}, owner ${entry.uid}:${entry.gid}) cannot be entered by the service user ${account.name}`,
      };
    }
  }
  if (!permits(executable, account, 0o1)) {
    return {
      reachable: false,
      reason: `${executable.path} (mode ${octal(executable.mode)}, owner ${executable.uid}:${executable.gid}) is not executable by the service user ${account.name}`,
    };
  }
  return { reachable: true };
}

/** The real path of `executable` and every directory above it, root first, with their modes and owners. */
export async function collectPathEntries(executable: string): Promise<PathEntry[]> {
  const real = await realpath(executable);
  const paths = [real];
  for (let path = dirname(real); paths[0] !== "/"; path = dirname(path)) paths.unshift(path);
  return Promise.all(
    paths.map(async (path) => {
      const info = await lstat(path);
      return { path, mode: info.mode & 0o7777, uid: info.uid, gid: info.gid, isDirectory: info.isDirectory() };
    }),
  );
}
