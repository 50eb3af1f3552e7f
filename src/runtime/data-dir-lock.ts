import { closeSync, constants, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { EdgeError } from "../errors/index.ts";
import { ensurePrivateFile, makePrivateDir, PRIVATE_FILE_MODE } from "./private-file.ts";
import { SqliteResult, sqliteResultCode } from "./sqlite-errors.ts";

export const LOCK_FILE = "agent.lock";
export const PID_FILE = "agent.pid";

/** The pid file is rewritten in place at this size: once it exists, a full disk does not stop it. */
const PID_FILE_BYTES = 16;

/** Another process holds the data dir. */
export class DataDirLockedError extends EdgeError {
  readonly code = "EDGE_DATA_DIR_LOCKED";
  readonly holderPid: number | null;
  constructor(dataDir: string, holderPid: number | null, options?: { readonly cause?: unknown }) {
    super(
      `data dir ${dataDir} is in use by another edge-agent (${holderPid === null ? "pid not known" : `pid ${holderPid}`}): two agents must not share one data dir`,
      options,
    );
    this.name = "DataDirLockedError";
    this.holderPid = holderPid;
  }
}

export interface DataDirLock {
  /** Lets the next agent in; idempotent. The process ending releases it too, however it ends. */
  release(): void;
}

/**
 * One agent per data dir: two would drain one outbox and hand out the same sequence numbers.
 *
 * The lock is the kernel's, not a pid file's: an exclusive SQLite transaction held open on
 * `agent.lock` (an empty database; fcntl locks on POSIX, LockFileEx on Windows). The kernel drops it
 * when its process ends, kill -9 and power cuts included, so there is no stale lock to take over, no
 * recycled pid to be fooled by, and no race between two starts: exactly one `BEGIN EXCLUSIVE` wins.
 * Taking it writes nothing, so it works on a full disk. `agent.pid` beside it only names the
 * holder in the message the loser gets; it is written after the lock is taken and removed before
 * it is released.
 */
export function lockDataDir(dataDir: string, pid: number): DataDirLock {
  makePrivateDir(dataDir);
  ensurePrivateFile(join(dataDir, LOCK_FILE));
  const database = new DatabaseSync(join(dataDir, LOCK_FILE), { timeout: 0 });
  try {
    database.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    database.close();
    if (sqliteResultCode(error) === SqliteResult.busy)
      throw new DataDirLockedError(dataDir, readLockHolder(dataDir), { cause: error });
    throw error;
  }
  const pidPath = join(dataDir, PID_FILE);
  try {
    writePidInPlace(pidPath, pid);
  } catch {
    // Only the loser's message needs it ("pid not known" without it); the lock itself holds.
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      rmSync(pidPath, { force: true });
      database.exec("ROLLBACK");
      database.close();
    },
  };
}

/** The pid the holder of the data dir wrote, if any (it may have ended since: check before trusting). */
export function readLockHolder(dataDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(dataDir, PID_FILE), "utf8"), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function writePidInPlace(path: string, pid: number): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, PRIVATE_FILE_MODE);
  try {
    const line = Buffer.from(`${String(pid).padEnd(PID_FILE_BYTES - 1)}\n`);
    writeSync(fd, line, 0, line.length, 0);
  } finally {
    closeSync(fd);
  }
}
