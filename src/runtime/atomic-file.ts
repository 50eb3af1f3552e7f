import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync } from "node:fs";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { POSIX_FILE_SYSTEM } from "./host.ts";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "./private-file.ts";

/**
 * Replaces a file so that a crash at any point leaves either the old or the new content, never a
 * torn one: write a sibling, fsync it, rename over, fsync the directory so the rename itself lasts.
 * The file is 0600 unless `mode` says otherwise, a directory it creates 0700 (see private-file.ts).
 * When writing or renaming fails (a full disk, most often), the sibling is removed: a caller
 * that retries every few seconds must not leave a file behind each time.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number = PRIVATE_FILE_MODE,
): Promise<void> {
  const directory = dirname(path);
  await mkdir(directory, { recursive: true, mode: PRIVATE_DIR_MODE });
  // Unique per write: two writers of the same file must never share a temporary.
  const temporary = `${path}.${randomBytes(TEMPORARY_ID_BYTES).toString("hex")}.tmp`;
  try {
    const handle = await open(temporary, "w", mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
}

const TEMPORARY_ID_BYTES = 6;
const ABANDONED_TEMPORARY = new RegExp(`\\.[0-9a-f]{${TEMPORARY_ID_BYTES * 2}}\\.tmp$`);

/**
 * Removes the siblings `writeFileAtomic` leaves when the process is killed between writing and
 * renaming (kill -9, power loss): the old file is intact, the sibling is garbage. Call it only when
 * nothing writes in `directory` (at start: one agent per data dir holds its lock). Answers the names removed.
 */
export async function removeAbandonedTemporaries(directory: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const abandoned = names.filter((name) => ABANDONED_TEMPORARY.test(name));
  for (const name of abandoned) await rm(`${directory}/${name}`, { force: true });
  return abandoned;
}

/** Makes a file's creation (or a rename) in `directory` survive a power cut. */
export async function syncDirectory(directory: string): Promise<void> {
  // Windows cannot open a directory for fsync; there the rename is as durable as it gets.
  if (!POSIX_FILE_SYSTEM) return;
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a file's creation (or a rename) in `directory` survive a power cut; synchronous. */
export function syncDirectorySync(directory: string): void {
  if (!POSIX_FILE_SYSTEM) return;
  const fd = openSync(directory, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
