import { randomUUID } from "node:crypto";
import { stat, statfs, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Settings } from "../../settings/index.ts";
import { type CheckResult, fail, pass, warn } from "./check-result.ts";

/**
 * Below this the agent cannot be trusted to start and buffer: a few hours of telemetry offline
 * (about 1 KB a sample, one a minute) plus the database's own pages and the status file.
 */
export const MIN_FREE_BYTES = 16 * 1024 * 1024;

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(1)} GiB`;
}

/** The closest directory that exists, at `path` or above it. */
async function nearestExisting(path: string): Promise<string> {
  let current = path;
  // Bounded: each step goes one level up, and the root exists.
  for (;;) {
    try {
      await stat(current);
      return current;
    } catch {
      const parent = dirname(current);
      if (parent === current) return current;
      current = parent;
    }
  }
}

/** Can this user create a file in `dir`? Tried for real: modes, ACLs and read-only mounts all answer. */
async function tryWrite(dir: string): Promise<string | null> {
  const probe = join(dir, `.edge-agent-doctor-${randomUUID()}`);
  try {
    await writeFile(probe, "", { mode: 0o600, flag: "wx" });
    await unlink(probe);
    return null;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}

const asUser = (): string => (typeof process.getuid === "function" ? `uid ${process.getuid()}` : "this user");

/** The data dir: there (or creatable), writable by this user, private, with room for the outbox. */
export async function dataDirChecks(settings: Settings): Promise<CheckResult[]> {
  const { dataDir } = settings;
  const results: CheckResult[] = [];
  const fixAccess = `run doctor as the agent's user (or sudo), or set EDGE_AGENT_DATA_DIR / --data-dir to a directory it owns`;
  const existing = await nearestExisting(dataDir);
  if (existing !== dataDir) {
    const problem = await tryWrite(existing);
    if (problem)
      return [
        fail(
          "data dir",
          `${dataDir} does not exist and cannot be created: ${existing} is not writable by ${asUser()} (${problem})`,
          fixAccess,
        ),
      ];
    results.push(pass("data dir", `${dataDir} does not exist yet; the agent creates it (${existing} is writable)`));
  } else {
    const info = await stat(dataDir);
    if (!info.isDirectory())
      return [fail("data dir", `${dataDir} is not a directory`, "remove it or point EDGE_AGENT_DATA_DIR elsewhere")];
    const problem = await tryWrite(dataDir);
    if (problem) return [fail("data dir", `${dataDir} is not writable by ${asUser()} (${problem})`, fixAccess)];
    results.push(
      (info.mode & 0o077) === 0
        ? pass("data dir", `${dataDir} is writable and private (mode ${(info.mode & 0o777).toString(8)})`)
        : warn(
            "data dir",
            `${dataDir} is writable but open to others (mode ${(info.mode & 0o777).toString(8)}); it holds the outbox and inventory`,
            `chmod 700 ${dataDir}`,
          ),
    );
  }
  const space = await statfs(existing).catch(() => null);
  if (space === null) {
    results.push(warn("free space", `cannot tell the free space under ${existing}`, "check it with df"));
    return results;
  }
  const free = space.bavail * space.bsize;
  const outboxLimit = settings.outbox.maxBytes;
  if (free < MIN_FREE_BYTES) {
    results.push(
      fail(
        "free space",
        `${formatBytes(free)} free for the data dir: too little to buffer events (needs ${formatBytes(MIN_FREE_BYTES)} at least)`,
        "free space on that file system or move the data dir",
      ),
    );
  } else if (free < outboxLimit) {
    results.push(
      warn(
        "free space",
        `${formatBytes(free)} free, less than the outbox may grow to (${formatBytes(outboxLimit)}): offline, the disk fills before the outbox evicts`,
        "free space, or lower EDGE_AGENT_OUTBOX_MAX_BYTES below what is free",
      ),
    );
  } else {
    results.push(
      pass("free space", `${formatBytes(free)} free (the outbox may take up to ${formatBytes(outboxLimit)})`),
    );
  }
  return results;
}
