import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import { isSea } from "node:sea";
import type { Logger } from "../runtime/index.ts";
import { executableLocationProblem } from "../runtime/index.ts";
import {
  abandonActive,
  decideLaunch,
  type InstalledBinary,
  type LaunchContext,
  readUpdateState,
  rollBackTrial,
  type UpdateState,
  updatePaths,
  writeUpdateState,
} from "../update/index.ts";
import { replaceProcess } from "./replace-process.ts";

/**
 * Set by a launcher for the version it starts: holds the launcher's own command line (JSON), so
 * the version knows it was launched and how to go back through the launcher to restart.
 */
export const LAUNCHER_ENV = "EDGE_AGENT_LAUNCHER";

/** The command that starts this program: the executable itself, or node and the script from sources. */
export function ownCommand(): string[] {
  if (isSea()) return [process.execPath];
  return [process.execPath, ...process.execArgv, ...(process.argv[1] ? [process.argv[1]] : [])];
}

/** This process's environment for a program that must do its own launching (the launcher, a check run). */
export function environmentWithoutLauncher(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy[LAUNCHER_ENV];
  return copy;
}

/** The launcher that started this process, or this process's own command if nothing launched it. */
export function launcherCommand(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env[LAUNCHER_ENV];
  if (raw) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((part) => typeof part === "string"))
        return parsed as string[];
    } catch {
      // Not ours: fall through to our own command.
    }
  }
  return ownCommand();
}

export interface LaunchOptions {
  readonly dataDir: string;
  readonly selfVersion: string;
  /** The arguments this process got (`run` and its flags): the launched version gets the same. */
  readonly args: readonly string[];
  readonly logger: Logger;
  readonly now?: () => number;
  readonly exec?: (file: string, args: readonly string[], env: NodeJS.ProcessEnv) => Promise<never>;
}

async function binaryProblem(binary: InstalledBinary): Promise<string | null> {
  try {
    const info = await stat(binary.path);
    if (info.size !== binary.size)
      return `${binary.path} is ${info.size} bytes, not the ${binary.size} it had when verified`;
    // Where another user could have swapped it since it was staged, it is not run.
    return await executableLocationProblem(binary.path);
  } catch (error) {
    return `cannot use ${binary.path}: ${(error as Error).message}`;
  }
}

/**
 * Run by `edge-agent run` before anything else: hands the process over to the installed update
 * (or the trial being proven) when there is one, and returns when this binary should run the
 * agent itself. Any trouble with the update state falls back to this binary: the packaged one
 * is always there to run.
 */
export async function launchInstalledVersion(options: LaunchOptions): Promise<void> {
  if (process.env[LAUNCHER_ENV]) return;
  const { logger } = options;
  const paths = updatePaths(options.dataDir);
  const context: LaunchContext = {
    selfVersion: options.selfVersion,
    nowMs: (options.now ?? Date.now)(),
    newId: randomUUID,
  };
  const exec = options.exec ?? replaceProcess;
  let state: UpdateState;
  try {
    state = await readUpdateState(paths);
  } catch (error) {
    logger.error({ err: error }, "the update state is unreadable: running the packaged version");
    return;
  }
  const save = async (next: UpdateState): Promise<boolean> => {
    if (next === state) return true;
    try {
      await writeUpdateState(paths, next);
      state = next;
      return true;
    } catch (error) {
      logger.error({ err: error }, "cannot write the update state: running the packaged version");
      return false;
    }
  };
  // Each failed start drops one candidate (trial, then active), so this ends after a few turns.
  for (let turn = 0; turn < 3; turn += 1) {
    const decision = decideLaunch(state, context);
    // The trial's start count must be on disk before it runs: a crash loop is counted that way.
    if (!(await save(decision.state))) return;
    if (decision.kind === "run-here") return;
    const { binary } = decision;
    let problem = await binaryProblem(binary);
    if (!problem) {
      logger.info(
        { version: binary.version, path: binary.path, trial: decision.trial },
        "starting the installed update",
      );
      try {
        await exec(binary.path, options.args, { ...process.env, [LAUNCHER_ENV]: JSON.stringify(ownCommand()) });
      } catch (error) {
        problem = `cannot start ${binary.path}: ${(error as Error).message}`;
      }
    }
    // exec only comes back when it failed; the fallback text is for a replacement that breaks that.
    const reason = problem ?? `${binary.path} returned instead of running`;
    logger.error({ version: binary.version, problem: reason }, "the installed update cannot run: rolling back");
    if (!(await save(decision.trial ? rollBackTrial(state, reason, context) : abandonActive(state, reason, context))))
      return;
  }
}
