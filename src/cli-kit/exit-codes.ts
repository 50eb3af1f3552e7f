import { EdgeError } from "../errors/index.ts";

export const ExitCode = {
  ok: 0,
  failure: 1,
  /** Bad usage or a bad setting: fixing the command line or the settings is the cure. */
  badSettings: 2,
  /** `run`: another agent holds the data dir (the message names its pid). */
  dataDirInUse: 3,
  /** The agent stopped to be started again (a self-update): the service manager restarts it. */
  restart: 75,
  /** `task run`: no end came while following (as timeout(1) says it). */
  noResult: 124,
  /** `task run`: following stopped by Ctrl-C before the end came (128 + SIGINT). */
  interrupted: 130,
  /** Uninstalled remotely (src/service/remote-uninstall.ts): the service manager must not restart it. */
  uninstalled: 78,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What each exit code tells an operator or a script, for `--help`. */
export const EXIT_CODE_MEANINGS: Readonly<Record<ExitCodeValue, string>> = {
  [ExitCode.ok]: "done",
  [ExitCode.failure]: "failed (the line on stderr says why), or for status: the agent is not running",
  [ExitCode.badSettings]: "bad usage or a bad setting: fix the command line or the settings",
  [ExitCode.dataDirInUse]: "another edge-agent holds the data dir",
  [ExitCode.restart]: "stopped to be started again (a self-update); the service manager restarts it",
  [ExitCode.noResult]: "no end of the task came while following (it may still wait for its machine, or run)",
  [ExitCode.interrupted]: "stopped following (Ctrl-C) before the task's end came; the task goes on",
  [ExitCode.uninstalled]: "uninstalled by a remote command; the service manager must not restart it",
};

/** Thrown by a command to end with a given exit code and one line for the operator. */
export class CommandError extends EdgeError {
  readonly code = "EDGE_COMMAND";
  readonly exitCode: number;
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "CommandError";
    this.exitCode = exitCode;
  }
}
