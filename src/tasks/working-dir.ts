import { realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";

/** The folder under the data dir where each task gets a folder of its own (removed once its result is stored). */
export const TASKS_FOLDER = "tasks";

/** `<data dir>/tasks/<taskId>`: the task's own folder (its script, and its working dir unless it asks for one). */
export function taskFolder(dataDir: string, taskId: string): string {
  return join(dataDir, TASKS_FOLDER, taskId);
}

/** `path` is `base` or inside it (both already resolved). */
function within(base: string, path: string): boolean {
  const rel = relative(base, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

async function resolved(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}

export type WorkingDirChoice = { readonly path: string } | { readonly refusal: string };

/**
 * Where a task runs: its own folder when it names none; else `requested`, only when it is an
 * existing folder under the data dir or under a folder `tasks.allowedWorkingDirs` names, links
 * resolved (a link under an allowed folder that points elsewhere is judged by where it points).
 * The tasks' own folders are the agent's: none may be asked for. Creates nothing.
 */
export async function chooseWorkingDir(
  requested: string | undefined,
  options: { readonly dataDir: string; readonly allowedWorkingDirs: readonly string[]; readonly taskId: string },
): Promise<WorkingDirChoice> {
  if (requested === undefined) return { path: taskFolder(options.dataDir, options.taskId) };
  const named = JSON.stringify(requested);
  if (!isAbsolute(requested)) return { refusal: `workingDir ${named} is not an absolute path` };
  const real = await resolved(requested);
  if (real === null) return { refusal: `workingDir ${named} does not exist on this machine` };
  const isFolder = await stat(real).then(
    (found) => found.isDirectory(),
    () => false,
  );
  if (!isFolder) return { refusal: `workingDir ${named} is not a folder this agent can use` };
  const dataDir = (await resolved(options.dataDir)) ?? options.dataDir;
  if (within(join(dataDir, TASKS_FOLDER), real))
    return { refusal: `workingDir ${named} is inside ${join(options.dataDir, TASKS_FOLDER)}, the tasks' own folders` };
  const allowed = (await Promise.all(options.allowedWorkingDirs.map(resolved))).filter(
    (folder): folder is string => folder !== null,
  );
  if ([dataDir, ...allowed].some((base) => within(base, real))) return { path: real };
  const listed = options.allowedWorkingDirs.length === 0 ? "none" : options.allowedWorkingDirs.join(", ");
  return {
    refusal: `workingDir ${named}${real === requested ? "" : ` (${real})`} is not under the data dir (${options.dataDir}) or a folder of tasks.allowedWorkingDirs (${listed})`,
  };
}
