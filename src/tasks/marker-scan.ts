import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** The variable every process of a task inherits: `<taskId>:<nonce>`, the nonce new for each run. */
export const TASK_MARKER_VARIABLE = "EDGE_TASK_ID";

export interface TaskProcessQuery {
  /** `EDGE_TASK_ID`'s value in the task's processes. */
  readonly marker: string;
  /** The task's process group (its first process's id), or null: the marked processes only. */
  readonly group: number | null;
  /** Only processes of this user (the agent's own); null: no uids here, nothing is scanned. */
  readonly uid: number | null;
  /** Where the process table is (default `/proc`): Linux only. */
  readonly procRoot?: string;
}

/**
 * The live processes of a task: of the agent's user, in the task's process group or carrying
 * `EDGE_TASK_ID=<marker>` in their environment (a daemon that left the group with setsid), not
 * ended (a zombie waiting to be reaped is not counted: it holds its group but runs nothing). Null
 * where there is no process table to read (macOS, Windows): then only the group can be signalled.
 *
 * A process's environment there is the one it started with: one that cleared it when it started
 * (`env -i`) and left the group is not found. Confinement (`tasks.confine`) covers that case: the
 * whole sandbox ends with its first process.
 */
export async function taskProcesses(query: TaskProcessQuery): Promise<number[] | null> {
  if (query.uid === null) return null;
  const procRoot = query.procRoot ?? "/proc";
  let entries: string[];
  try {
    entries = await readdir(procRoot);
  } catch {
    return null;
  }
  const wanted = Buffer.from(`${TASK_MARKER_VARIABLE}=${query.marker}`);
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const dir = join(procRoot, entry);
    try {
      // Another user's process is never ours to stop, whatever it carries.
      if ((await stat(dir)).uid !== query.uid) continue;
      const { state, group } = statusOf(await readFile(join(dir, "stat"), "utf8"));
      if (state === "Z" || state === "X") continue;
      if (group === query.group || carries(await readFile(join(dir, "environ")), wanted)) found.push(Number(entry));
    } catch {
      // Gone meanwhile, or its environment is not readable (a kernel thread): not a task's.
    }
  }
  return found;
}

/** State and process group from `/proc/<pid>/stat` (`pid (comm) S ppid pgrp ...`; comm may hold spaces and parentheses). */
function statusOf(text: string): { state: string; group: number } {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", group: Number(fields[2]) };
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
