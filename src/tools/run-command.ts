import { execFile } from "node:child_process";
import { EdgeError } from "../errors/index.ts";

export class ToolCommandError extends EdgeError {
  readonly code = "EDGE_TOOL_COMMAND";
  constructor(message: string) {
    super(message);
    this.name = "ToolCommandError";
  }
}

/** Runs a tool's command without a shell, with a deadline, keeping the end of its output for the error. */
export function runToolCommand(
  file: string,
  args: readonly string[],
  options: { cwd: string; timeoutMs: number },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { cwd: options.cwd, timeout: options.timeoutMs, maxBuffer: 4 * 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const tail = (stderr || stdout).trim().split("\n").slice(-5).join(" | ").slice(0, 500);
        const why = error.killed
          ? `timed out after ${options.timeoutMs} ms`
          : `exited with ${error.code ?? error.signal ?? "an error"}`;
        reject(new ToolCommandError(`${file} ${why}${tail ? `: ${tail}` : ""}`));
      },
    );
  });
}
