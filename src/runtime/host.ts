import type { OsName } from "../contracts/index.ts";

/** The machine an agent runs on, as the agent sees it: injected, so one process can pose as many. */
export interface Host {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly pid: number;
}

/** The platform's name for an OS (DownloadConfiguration's `os`). */
export function osNameOf(platform: NodeJS.Platform): OsName {
  return platform === "win32" ? "windows" : platform === "darwin" ? "macos" : "linux";
}

/**
 * Whether the file system this process writes on is POSIX (modes, fsync on a directory). With
 * PROCESS_UID and signalProcess below, the one process read outside src/cli/, on purpose: file
 * helpers act on the real disk, and remote tasks run real processes, so they ask the real OS. A simulated Windows agent on Linux still writes Linux files;
 * its `Host.platform` must not decide whether a directory is fsynced or a mode narrowed.
 */
export const POSIX_FILE_SYSTEM = process.platform !== "win32";

/**
 * The user this process runs as (null where there are no uids): whose files and folders, beside
 * root's, a program the agent runs may sit in (executable-location.ts). Read here for the same
 * reason: the disk's owners are the real OS's.
 */
export const PROCESS_UID: number | null = typeof process.getuid === "function" ? process.getuid() : null;

/** What became of a signal sent: delivered, no such process (or group), or one of another user's. */
export type SignalOutcome = "sent" | "gone" | "not-permitted";

/**
 * Sends `signal` (0: only asks whether it exists) to a process, or with a negative pid to a whole
 * process group: what stops a remote task's process tree, which `ChildProcess.kill` cannot name.
 * Read here for the reason above: a task's processes are the real OS's, whatever OS an agent
 * poses as.
 */
export function signalProcess(pid: number, signal: NodeJS.Signals | 0): SignalOutcome {
  try {
    process.kill(pid, signal);
    return "sent";
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM" ? "not-permitted" : "gone";
  }
}
