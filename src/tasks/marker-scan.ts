import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** The variable every process of a task inherits: `<taskId>:<nonce>`, the nonce new for each run. */
export const TASK_MARKER_VARIABLE = "EDGE_TASK_ID";

export interface MarkerScanOptions {
  /** Only processes of this user (the agent's own); null: no uids here, nothing is scanned. */
  readonly uid: number | null;
  /** Where the process table is (default `/proc`): Linux only. */
  readonly procRoot?: string;
}

/**
 * The processes of the agent's user whose environment carries `EDGE_TASK_ID=<marker>`: every
 * descendant of a task, including one that left its process group (a daemon that called setsid),
 * unless it cleared its environment when it started. Linux only (`/proc/<pid>/environ`); elsewhere
 * it finds none and the task's group (or job) is all that is stopped.
 *
 * A process's environment there is the one it started with: a child started without the variable
 * (`env -i`) is not found. Confinement (`tasks.confine`) covers that case: the whole sandbox dies.
 */
export async function processesWithMarker(marker: string, options: MarkerScanOptions): Promise<number[]> {
  if (options.uid === null) return [];
  const procRoot = options.procRoot ?? "/proc";
  let entries: string[];
  try {
    entries = await readdir(procRoot);
  } catch {
    return [];
  }
  const wanted = Buffer.from(`${TASK_MARKER_VARIABLE}=${marker}`);
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const dir = join(procRoot, entry);
    try {
      // Another user's process is never ours to stop, whatever it carries.
      if ((await stat(dir)).uid !== options.uid) continue;
      if (carries(await readFile(join(dir, "environ")), wanted)) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or its environment is not readable (a kernel thread): not a task's.
    }
  }
  return found;
}

/** Whether the NUL-separated environment holds exactly the entry `wanted`. */
function carries(environ: Buffer, wanted: Buffer): boolean {
  let from = 0;
  while (from < environ.length) {
    const end = environ.indexOf(0, from);
    const stop = end === -1 ? environ.length : end;
    if (stop - from === wanted.length && environ.subarray(from, stop).equals(wanted)) return true;
    from = stop + 1;
  }
  return false;
}
