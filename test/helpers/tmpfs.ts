import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A small real tmpfs, for tests that need a full disk: `fill()` takes every free byte (the next
 * write anywhere on it fails with ENOSPC), `free()` gives it back. Mounting needs root: `mountTmpfs`
 * returns null elsewhere, and the test says so when it skips (`TMPFS_SKIP_REASON`).
 */
export interface TmpfsHandle {
  readonly dir: string;
  fill(): void;
  free(): void;
  unmount(): void;
}

export const TMPFS_SKIP_REASON = "needs root to mount a tmpfs (a real full disk)";

export const canMountTmpfs = (): boolean => process.getuid?.() === 0;

export function mountTmpfs(sizeBytes: number): TmpfsHandle | null {
  if (!canMountTmpfs()) return null;
  const dir = mkdtempSync(join(tmpdir(), "edge-agent-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "tmpfs", dir]);
  const filler = join(dir, "filler");
  return {
    dir,
    fill() {
      const fd = openSync(filler, "a");
      try {
        // Big writes first, then single bytes for the last partial page; bounded by the size.
        for (const chunk of [Buffer.alloc(64 * 1024), Buffer.alloc(1)]) {
          for (let written = 0; written <= sizeBytes; written += chunk.length) {
            try {
              writeSync(fd, chunk);
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw error;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      execFileSync("umount", ["-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
