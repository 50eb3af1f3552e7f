import { type ChildProcessByStdio, execFile, spawn } from "node:child_process";
import { platform as hostPlatform } from "node:os";
import type { Readable } from "node:stream";
import { type Clock, PROCESS_UID, signalProcess, sleepOn } from "../runtime/index.ts";
import { taskProcesses } from "./marker-scan.ts";

/** What runs: the program (argv[0], or an interpreter, or bwrap) and its arguments, never through a shell. */
export interface TaskProcessSpec {
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** The whole environment (the marker included). */
  readonly env: Readonly<Record<string, string>>;
}

export type TaskChild = ChildProcessByStdio<null, Readable, Readable>;

/**
 * Starts a task's process in a process group (and session) of its own, so the whole group can be
 * signalled; its stdout and stderr are pipes the agent reads as they come. The environment carries
 * `EDGE_TASK_ID=<marker>`, which every descendant inherits.
 */
export function startTaskProcess(spec: TaskProcessSpec): TaskChild {
  return spawn(spec.file, [...spec.args], {
    cwd: spec.cwd,
    env: { ...spec.env },
    detached: true,
    shell: false,
    stdio: ["ignore", "pipe", "pipe"],
    windowsHide: true,
  });
}

export interface TreeStopOptions {
  /** The task's first process: its group's leader (POSIX), the root of its tree (Windows); null: the marked processes only. */
  readonly pid: number | null;
  /** `EDGE_TASK_ID`'s value in this run's processes. */
  readonly marker: string;
  /** Between SIGTERM and SIGKILL. */
  readonly graceMs: number;
  readonly clock: Clock;
}

export interface TreeStopReport {
  /** Processes (and the group) that were there to be sent SIGTERM. */
  readonly terminated: number;
  /** Those still there after the grace, sent SIGKILL. */
  readonly killed: number;
  /** Processes still seen after SIGKILL and a last wait (another user's, a process in uninterruptible sleep). */
  readonly survivors: number;
}

/** How often the tree is looked at while it winds down (no event tells when a non-child process ends). */
const POLL_MS = 100;
/** After SIGKILL: how long to wait to see the tree gone before reporting what is left. */
const AFTER_KILL_MS = 2_000;

/**
 * Stops every process of a task: its process group and every process of the agent's user that
 * carries its marker (one that left the group), SIGTERM, then, those still there after `graceMs`,
 * SIGKILL. Resolves once none is left or, after SIGKILL, a last short wait. On Linux what is left is
 * read from the process table (a zombie, ended but not reaped yet, is not left); on macOS only the
 * group is signalled and watched (no table to read environments from); on Windows, the tree of the
 * first process (`taskkill /T`), without and then with `/F`.
 */
export async function stopProcessTree(options: TreeStopOptions): Promise<TreeStopReport> {
  if (hostPlatform() === "win32") return stopWindowsTree(options);
  const { clock, pid } = options;
  const present = async (): Promise<number[]> => {
    const listed = await taskProcesses({ marker: options.marker, group: pid, uid: PROCESS_UID });
    if (listed !== null) return listed;
    return pid === null || signalProcess(-pid, 0) === "gone" ? [] : [-pid];
  };
  const sendAll = (targets: readonly number[], name: NodeJS.Signals): void => {
    // The group as a whole too: a member started between the look and the signal gets it.
    if (pid !== null) signalProcess(-pid, name);
    for (const target of targets) signalProcess(target, name);
  };
  const waitGone = async (budgetMs: number): Promise<number[]> => {
    const until = clock.monotonicMs() + budgetMs;
    let left = await present();
    while (left.length > 0 && clock.monotonicMs() < until) {
      await sleepOn(clock, Math.min(POLL_MS, Math.max(0, until - clock.monotonicMs())));
      left = await present();
    }
    return left;
  };
  const first = await present();
  if (first.length === 0) return { terminated: 0, killed: 0, survivors: 0 };
  sendAll(first, "SIGTERM");
  const stubborn = await waitGone(options.graceMs);
  if (stubborn.length === 0) return { terminated: first.length, killed: 0, survivors: 0 };
  sendAll(stubborn, "SIGKILL");
  const survivors = await waitGone(AFTER_KILL_MS);
  return { terminated: first.length, killed: stubborn.length, survivors: survivors.length };
}

async function stopWindowsTree(options: TreeStopOptions): Promise<TreeStopReport> {
  const taskkill = (force: boolean): Promise<boolean> =>
    new Promise((resolve) => {
      const args = ["/PID", String(options.pid), "/T", ...(force ? ["/F"] : [])];
      execFile("taskkill", args, { windowsHide: true }, (error) => resolve(error === null));
    });
  const { pid } = options;
  if (pid === null) return { terminated: 0, killed: 0, survivors: 0 };
  const alive = (): boolean => signalProcess(pid, 0) !== "gone";
  if (!alive()) return { terminated: 0, killed: 0, survivors: 0 };
  await taskkill(false);
  const until = options.clock.monotonicMs() + options.graceMs;
  while (alive() && options.clock.monotonicMs() < until) await sleepOn(options.clock, POLL_MS);
  if (!alive()) return { terminated: 1, killed: 0, survivors: 0 };
  await taskkill(true);
  return { terminated: 1, killed: 1, survivors: alive() ? 1 : 0 };
}
