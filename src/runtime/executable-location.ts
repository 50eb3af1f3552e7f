import type { Stats } from "node:fs";
import { lstat, realpath } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { EdgeError } from "../errors/index.ts";
import { POSIX_FILE_SYSTEM, PROCESS_UID } from "./host.ts";

/** A program the agent was about to run sits where another user could have changed it. */
export class UnsafeExecutableLocationError extends EdgeError {
  readonly code = "EDGE_UNSAFE_EXECUTABLE_LOCATION";
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path} is not run: ${problem}`);
    this.name = "UnsafeExecutableLocationError";
    this.path = path;
  }
}

const WRITABLE_BY_OTHERS = 0o022;
/** A sticky folder lets no one but an entry's owner (or root) rename or remove the entry. */
const STICKY = 0o1000;

const modeText = (stats: Stats): string => (stats.mode & 0o7777).toString(8).padStart(4, "0");

function ownerProblem(path: string, stats: Stats, uid: number | null): string | null {
  if (stats.uid === 0 || stats.uid === uid) return null;
  return `${path} belongs to uid ${stats.uid}, neither root nor this agent's user`;
}

/** Folders from `path`'s own up to the root, nearest first. */
function foldersAbove(path: string): string[] {
  const folders: string[] = [];
  let current = dirname(path);
  // Bounded: each step goes one level up, and dirname of the root is the root.
  for (;;) {
    folders.push(current);
    const parent = dirname(current);
    if (parent === current) return folders;
    current = parent;
  }
}

/**
 * Why `file` must not be run, or null when it may: the file and every folder on its way from the
 * root (as named, and after resolving links) must belong to root or to this process's user, and
 * none may be writable by anyone else. A folder others may write is accepted only when it is
 * sticky (like /tmp): there no one but its owner can rename or remove what this user put in it.
 * Checked right before each run, so a file verified at download time is also the file that runs.
 * Not checked where the file system has no POSIX modes (Windows: its ACLs are not read).
 */
export async function executableLocationProblem(
  file: string,
  uid: number | null = PROCESS_UID,
): Promise<string | null> {
  if (!POSIX_FILE_SYSTEM) return null;
  const named = resolve(file);
  let real: string;
  try {
    real = await realpath(named);
  } catch (error) {
    return `cannot resolve ${named}: ${(error as Error).message}`;
  }
  const fileStats = await lstat(real);
  if (!fileStats.isFile()) return `${real} is not a file`;
  const fileOwner = ownerProblem(real, fileStats, uid);
  if (fileOwner) return fileOwner;
  if ((fileStats.mode & WRITABLE_BY_OTHERS) !== 0) return `${real} is writable by others (mode ${modeText(fileStats)})`;
  return foldersProblem(new Set([...foldersAbove(named), ...foldersAbove(real)]), uid);
}

/**
 * Why a program in `folder` (an existing folder) could not be run, judged as for a file in it:
 * the folder and every one above it. What `doctor` asks of the data dir.
 */
export async function folderLocationProblem(folder: string, uid: number | null = PROCESS_UID): Promise<string | null> {
  if (!POSIX_FILE_SYSTEM) return null;
  const named = resolve(folder);
  let real: string;
  try {
    real = await realpath(named);
  } catch (error) {
    return `cannot resolve ${named}: ${(error as Error).message}`;
  }
  return foldersProblem(new Set([named, ...foldersAbove(named), real, ...foldersAbove(real)]), uid);
}

async function foldersProblem(folders: ReadonlySet<string>, uid: number | null): Promise<string | null> {
  for (const folder of folders) {
    let stats: Stats;
    try {
      stats = await lstat(folder);
    } catch (error) {
      return `cannot check ${folder}: ${(error as Error).message}`;
    }
    // A link's own folder is on this list; where it points is on the resolved path's.
    if (stats.isSymbolicLink()) continue;
    if (!stats.isDirectory()) return `${folder} is not a folder`;
    const owner = ownerProblem(folder, stats, uid);
    if (owner) return `${owner}: it could replace what the agent runs`;
    if ((stats.mode & WRITABLE_BY_OTHERS) !== 0 && (stats.mode & STICKY) === 0)
      return `${folder} is writable by other users (mode ${modeText(stats)}): they could replace what the agent runs`;
  }
  return null;
}

/** Throws UnsafeExecutableLocationError when `file` sits where another user could have changed it. */
export async function assertSafeExecutableLocation(file: string, uid: number | null = PROCESS_UID): Promise<void> {
  const problem = await executableLocationProblem(file, uid);
  if (problem) throw new UnsafeExecutableLocationError(file, problem);
}
