import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync } from "node:fs";
import { POSIX_FILE_SYSTEM } from "./host.ts";

/**
 * What the agent keeps in its data and config dirs (the outbox holds the inventory, the settings
 * hold credentials) is its user's alone: directories 0700, files 0600, whatever the umask.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `path` (and missing parents) 0700; an existing directory is left as it is. */
export function makePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Makes sure `path` exists as a file only its owner may read, before a library opens it with its
 * own mode (SQLite creates 0644 and gives its -wal and -shm files the database file's mode). An
 * existing file others could read, left by an older version, is narrowed to 0600.
 */
export function ensurePrivateFile(path: string): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, PRIVATE_FILE_MODE);
  try {
    if (POSIX_FILE_SYSTEM && (fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}
